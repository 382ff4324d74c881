"""The snippet builder (/embed): pick a collection, language, size, theme and the widget's words,
see each format live, copy its code; or download everything to serve from one's own site.

The page works without JavaScript (a GET form renders the code); only the copy button uses a
script, our own same-origin file.
"""

from __future__ import annotations

import io
import json
import random
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import select

from embed.packs import PACK_FORMAT, pack_entry, pack_slug
from embed.publish import (
    EMBED_JS,
    FRAME_HTML,
    PUBLISHED_STATE,
    S3_PREFIX,
    build_embed_js,
    subresource_integrity,
    widget_words,
)
from embed.signing import load_or_create_signer
from embed.sizes import DEFAULT_SIZE, SIZES
from fragments.models import APPROVED, Fragment
from provenance.appender import published_verifier_key
from provenance.decisions import logged_approvals
from samizdat.errors import UnsafePathError
from samizdat.i18n import keep_language_in_links, page_language
from samizdat.paths import confined_file, confined_name
from samizdat.web import db_session, runtime

bp = Blueprint("embed_builder", __name__, template_folder="templates",
               static_folder="static", static_url_path="/embed/static")
# The builder's own links keep the reader's ?lang= (samizdat/i18n.py); the preview and the zip
# are the same whatever the page's language.
keep_language_in_links(bp, except_endpoints=("preview", "selfhost_zip"))

THEMES = ("light", "dark")
ALL = "all"
# ?lang= names the page's language everywhere on the site (samizdat/i18n.py), so the builder and
# the collection pages name the fragments' language this way; the frame keeps ?lang= (no page text).
FRAGMENT_LANG = "fragment_lang"
SELFHOST_SCRIPT = "/samizdat/embed.js"  # where the zip's README says to put its samizdat/ folder
BUILDER_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@dataclass(frozen=True)
class Choice:
    """What a supporter picked in the builder (every value checked against what exists)."""

    collection: str = ALL
    lang: str = ""
    size: str = DEFAULT_SIZE
    theme: str = "light"
    words: str = "en"

    def query(self) -> dict[str, str]:
        """The choice as the frame page's query parameters (empty ones left out)."""
        return {k: v for k, v in self.__dict__.items() if v}

    def form_query(self) -> dict[str, str]:
        """The choice as the builder's own query parameters (the fragments' language renamed)."""
        return {FRAGMENT_LANG if k == "lang" else k: v for k, v in self.query().items()}

    def widget_query(self) -> dict[str, str]:
        """What an oEmbed page URL carries besides its collection: how the widget looks."""
        return {k: v for k, v in self.form_query().items() if k != "collection"}


def available(session) -> tuple[list[str], list[str]]:
    """Collections and languages that have approved fragments."""
    rows = session.execute(
        select(Fragment.collection, Fragment.language).where(Fragment.status == APPROVED).distinct()
    ).all()
    return sorted({c for c, _ in rows if c}), sorted({lang for _, lang in rows if lang})


def read_choice(args: Mapping[str, str], collections: list[str],
                languages: list[str]) -> tuple[Choice, list[str]]:
    """A choice from query parameters (the builder's or an oEmbed page URL's); unknown values
    fall back to the default, with a notice each."""
    notices, values = [], {}
    allowed = {
        "collection": ("collection", [ALL, *collections]), FRAGMENT_LANG: ("lang", ["", *languages]),
        "size": ("size", list(SIZES)), "theme": ("theme", list(THEMES)),
        "words": ("words", sorted(widget_words())),
    }
    for name, (field, options) in allowed.items():
        raw = args.get(name)
        if raw is None:
            continue
        if raw in options:
            values[field] = raw
        else:
            notices.append(_("No %(name)s called %(value)s here; showing the default instead.",
                             name=name, value=repr(raw[:60])))
    return Choice(**values), notices


def _published() -> dict | None:
    path = runtime().settings.public_path / PUBLISHED_STATE
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


def sample_fragment(session, choice: Choice) -> Fragment | None:
    """A genuine approved fragment for the snippet's static fallback (random among the newest);
    once there is a log, one whose approval it holds (nothing else is public yet)."""
    query = select(Fragment).where(Fragment.status == APPROVED)
    if choice.collection != ALL:
        query = query.where(Fragment.collection == choice.collection)
    if choice.lang:
        query = query.where(Fragment.language == choice.lang)
    items = list(session.scalars(query.order_by(Fragment.reviewed_at.desc()).limit(50)))
    if published_verifier_key(runtime().settings.log_path) is not None:
        logged = logged_approvals(session, [f.id for f in items])
        items = [f for f in items if f.id in logged]
    return random.choice(items) if items else None


def script_sources(published: dict | None) -> list[str]:
    """Where the snippet loads embed.js from: the app, then S3, then an IPFS gateway by CID."""
    s = runtime().settings
    # The versioned name: the integrity attribute pins these exact bytes, so a snippet keeps
    # working after later publishes change embed.js.
    script = (published or {}).get("embed_js") or EMBED_JS
    sources = [f"{s.public_url.rstrip('/')}/embed/{script}"]
    if s.s3_public_base:
        sources.append(f"{s.s3_public_base}/{S3_PREFIX}/{script}")
    # By the publish's root CID, not the IPNS name: the bytes are immutable anyway (the integrity
    # attribute pins them), and gateways serve /ipfs/ at once where IPNS resolves slowly or not at all.
    if s.gateway_list and published and published.get("ipfs_root"):
        sources.append(f"{s.gateway_list[0]}/ipfs/{published['ipfs_root']}/{script}")
    return sources


def snippet_context(scripts: list[str] | None = None) -> dict:
    """What every snippet template needs for the request's choice: the choice itself, a genuine
    fragment for the written-in fallback, the widget's words, and where embed.js comes from."""
    session = db_session()
    collections, languages = available(session)
    choice, notices = read_choice(request.args, collections, languages)
    if "words" not in request.args and page_language() in widget_words():
        # A reader who reads the builder in Vietnamese most likely wants the widget's words so too.
        choice = replace(choice, words=page_language())
    published = _published()
    fragment = sample_fragment(session, choice)
    return dict(
        choice=choice, notices=notices, collections=collections, languages=languages,
        published=published, words=widget_words()[choice.words],
        fragment=pack_entry(fragment) if fragment else None,
        archive=runtime().settings.public_url.rstrip("/") + "/",
        scripts=script_sources(published) if scripts is None else scripts,
        integrity=published.get("embed_js_integrity") if published else None,
        pack=pack_slug(None if choice.collection == ALL else choice.collection),
    )


def _with_query(url: str, query: dict[str, str]) -> str:
    """``url`` with ``query`` appended, and no dangling "?" when there is nothing to append."""
    return f"{url}?{urlencode(query)}" if query else url


@bp.get("/embed")
def builder():
    """The snippet builder."""
    context = snippet_context()
    choice = context["choice"]
    base = context["archive"].rstrip("/")
    width, height = SIZES[choice.size]
    api_query = {k: v for k, v in (("collection", choice.collection), ("lang", choice.lang)) if v and v != ALL}
    context.update(
        sizes=SIZES, themes=THEMES, word_sets=sorted(widget_words()),
        frame_src=f"{base}/embed/frame?" + urlencode(choice.query()),
        width="100%" if choice.size == "full" else width, height=height,
        # The page URL carries the look, so that /oembed's frame has it too (embed/public.py).
        collection_page=base + url_for("embed_public.collection_page", name=choice.collection,
                                       **choice.widget_query()),
        api=_with_query(f"{base}/api/fragments/random", api_query),
        api_text=_with_query(f"{base}/api/fragments/random", {**api_query, "format": "text"}),
        feed=f"{base}/collections/{choice.collection}/feed.atom",
        preview=url_for("embed_builder.preview", **choice.form_query()),
        selfhost=url_for("embed_builder.selfhost_zip", **choice.form_query()),
    )
    script_snippet = render_template("embed/snippet_script.html", **context).strip()
    iframe_snippet = render_template("embed/snippet_iframe.html", **context).strip()
    response = Response(render_template(
        "embed/builder.html", script_snippet=script_snippet, iframe_snippet=iframe_snippet, **context
    ))
    response.headers["Content-Security-Policy"] = BUILDER_CSP
    return response


@bp.get("/embed/preview")
def preview():
    """A page holding just the script snippet, for the builder's live preview (in an iframe)."""
    context = snippet_context()
    context["scripts"] = context["scripts"][:1]
    base = context["archive"].rstrip("/")
    snippet = render_template("embed/snippet_script.html", **context)
    response = Response(f'<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" '
                        f'content="no-referrer"><title>Preview</title></head><body>{snippet}</body></html>')
    response.headers["Content-Security-Policy"] = (
        f"default-src 'none'; script-src {base}/embed/; connect-src *; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'"
    )
    return response


def _pack_closure(packs, choice: Choice) -> list[str]:
    """The chosen pack's files: its signed index, the shards it names, and the public key."""
    path = pack_slug(None if choice.collection == ALL else choice.collection)
    if choice.lang:
        path += f"/lang/{choice.lang}"
    index_rel = f"{path}/index.json"
    try:
        index = json.loads(json.loads((packs / index_rel).read_bytes())["payload"])
    except (OSError, ValueError, KeyError):
        abort(404, description="that pack has not been published yet; try again after the next publish")
    files = [index_rel, "key.json"]
    try:
        for table in index.get("tables", []):
            files.append(f"shards/{table['sha256']}.json")
            index.setdefault("shards", []).extend(
                json.loads(confined_file(packs, files[-1]).read_bytes())["shards"])
        files += [f"shards/{s['sha256']}.json" for s in index.get("shards", [])]
        # The names come from published files: each must stay inside packs/ (and the zip's folder).
        return [confined_name(rel) for rel in files]
    except UnsafePathError:
        abort(503, description="the published packs name a file outside their folder; republish them")


@bp.get("/embed/selfhost.zip")
def selfhost_zip():
    """Everything to serve the widget from one's own site: packs, embed.js, frame, README."""
    published = _published()
    root = runtime().settings.public_path
    if published is None or not (root / "packs" / "catalog.json").exists():
        abort(404, description="the fragment packs have not been published yet; try again later")
    signer = load_or_create_signer(runtime().settings.embed_signing_key_path)
    script = build_embed_js(signer, runtime().settings, origins=[{"packs": "packs/"}],
                            log=published.get("log"))
    # Root-relative: a relative src would resolve against each page's own folder
    # (/2026/12/post.html would ask for /2026/12/samizdat/embed.js). The README says so.
    context = snippet_context(scripts=[SELFHOST_SCRIPT])
    context["integrity"] = subresource_integrity(script)
    choice = context["choice"]
    example = render_template("embed/snippet_script.html", **context)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"samizdat/{EMBED_JS}", script)
        zf.writestr(f"samizdat/{FRAME_HTML}", (root / FRAME_HTML).read_bytes())
        for rel in _pack_closure(root / "packs", choice):
            zf.writestr(f"samizdat/packs/{rel}", confined_file(root / "packs", rel).read_bytes())
        zf.writestr("samizdat/README.txt", render_template("embed/selfhost_readme.txt", format=PACK_FORMAT,
                                                                     script=SELFHOST_SCRIPT))
        zf.writestr("example.html", f"<!doctype html><meta charset=utf-8><title>Samizdat example</title>\n{example}\n")
    response = Response(buffer.getvalue(), mimetype="application/zip")
    response.headers["Content-Disposition"] = 'attachment; filename="samizdat-embed.zip"'
    response.headers["Cache-Control"] = "no-store"
    return response
