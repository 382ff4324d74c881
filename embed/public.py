"""Public pages of fragments for people and other sites: a page per fragment and per collection,
oEmbed 1.0 (JSON and XML) and an Atom feed per collection. No cookie, no script, no address logged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from urllib.parse import parse_qsl, urlencode, urlsplit
from xml.etree import ElementTree as ET

from flask import Blueprint, Response, abort, jsonify, render_template, request, url_for
from markupsafe import escape
from sqlalchemy import select

from embed.builder import Choice, available, read_choice
from embed.sizes import SIZES, fit_size
from fragments.curation import is_fragment_id
from fragments.models import Fragment
from fragments.store import fragment_as_dict
from mirror.reader import capture_link
from provenance.decisions import is_public, logged_approvals, logged_public
from provenance.evidence import LogEntry, log_entry
from samizdat.web import db_session, json_error, runtime, whole_number

bp = Blueprint("embed_public", __name__, template_folder="templates")

ALL = "all"
FEED_ENTRIES = 50
OEMBED_CACHE_AGE = 3600
MAX_DIMENSION = 10_000


def approved_fragment(fragment_id: str) -> Fragment:
    """The public fragment with this id; 404 for any other id: pending ones, and approved ones
    whose approval of their current text the published log does not hold yet (issue #15: not in
    the log, not public), are not public."""
    session = db_session()
    fragment = session.get(Fragment, fragment_id) if is_fragment_id(fragment_id) else None
    if fragment is None or not is_public(session, fragment):
        abort(404, description=f"no published fragment with id {fragment_id[:40]}")
    return fragment


def collection_fragments(name: str, limit: int) -> list[Fragment]:
    """The newest public fragments (in the log: provenance.decisions) of collection ``name``
    ("all" for every one); 404 if none."""
    session = db_session()
    query = select(Fragment).where(logged_public())
    if name != ALL:
        query = query.where(Fragment.collection == name)
    items = list(session.scalars(
        query.order_by(Fragment.reviewed_at.desc(), Fragment.id).limit(limit)
    ))
    logged = logged_approvals(session, [f.id for f in items])  # the text the log vouches for
    items = [f for f in items if f.id in logged]
    if not items and name != ALL:
        abort(404, description=f"no published fragments in collection {name[:100]!r}")
    return items


def public_url(endpoint: str, **values) -> str:
    """An absolute URL under SAMIZDAT_PUBLIC_URL (not the request's Host, which anyone can set)."""
    return runtime().settings.public_url.rstrip("/") + url_for(endpoint, **values)


def _oembed_links(page_url: str, title: str) -> list[dict]:
    return [
        {"type": f"application/{fmt}+oembed", "title": title,
         "href": public_url("embed_public.oembed") + "?" + urlencode({"url": page_url, "format": fmt})}
        for fmt in ("json", "xml")
    ]


def fragment_log_entry(fragment: Fragment) -> LogEntry | None:
    """The fragment's latest logged approval (or edit) of its current text, with its proof; None
    while the published log holds none."""
    decision = logged_approvals(db_session(), [fragment.id]).get(fragment.id)
    if decision is None:
        return None
    settings = runtime().settings
    return log_entry(settings, decision.log_index, f"{settings.public_url.rstrip('/')}/log")


@bp.get("/fragments/<fragment_id>")
def fragment_page(fragment_id: str):
    """One fragment: its text, attribution, how to verify it, and the archived page it came from."""
    fragment = approved_fragment(fragment_id)
    page_url = public_url("embed_public.fragment_page", fragment_id=fragment.id)
    gateways = runtime().settings.gateway_list
    return render_template(
        "embed/fragment.html",
        fragment=fragment,
        reader_link=capture_link(fragment.capture_id, fragment.split_text),
        capture_url=capture_link(fragment.capture_id),
        gateway_links=[f"{g}/ipfs/{fragment.cid}" for g in gateways] if fragment.cid else [],
        oembed_links=_oembed_links(page_url, fragment.title or "Fragment"),
        canonical=page_url,
        log_entry=fragment_log_entry(fragment),
        archive_url=runtime().settings.public_url.rstrip("/"),
    )


@bp.get("/fragments/<fragment_id>.json")
def fragment_json(fragment_id: str):
    """One approved fragment's public JSON (as /api/fragments/random gives it), for programs such
    as the verifier, which hashes its text and looks for the log's decision on it."""
    response = jsonify(fragment_as_dict(approved_fragment(fragment_id)))
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=60"
    return response


@bp.get("/collections/<name>")
def collection_page(name: str):
    """The newest published fragments of a collection, with its feed and embed codes."""
    items = collection_fragments(name, FEED_ENTRIES)
    # The look chosen in the builder (?size=&theme=&words=) rides in the discovery links, so a
    # platform that pastes this page's address gets the frame the supporter chose.
    page_url = public_url("embed_public.collection_page", name=name, **widget_choice(request.args)[1])
    return render_template(
        "embed/collection.html", name=name, fragments=items,
        feed=url_for("embed_public.collection_feed", name=name),
        builder=url_for("embed_builder.builder", collection=name),
        oembed_links=_oembed_links(page_url, f"Samizdat: {name}"),
    )


def widget_choice(args: Mapping[str, str]) -> tuple[Choice, dict[str, str]]:
    """The widget's look from a page URL's query: the checked choice (unknown values fall back
    to the defaults), and the query parameters that were given and valid."""
    collections, languages = available(db_session())
    given = {k: v for k, v in args.items() if k != "collection"}
    choice, _ = read_choice(given, collections, languages)
    return choice, {k: v for k, v in choice.widget_query().items() if given.get(k) == v}


def _frame_url(collection: str, choice: Choice, size: str) -> str:
    base = runtime().settings.public_url.rstrip("/")
    # The frame page reads the same names as the builder's choice (embed.js, frameOptions).
    return f"{base}/embed/frame?" + urlencode({**choice.query(), "collection": collection, "size": size})


def _resolve(url: str) -> tuple[str, str | None, Fragment | None]:
    """What an oEmbed ``url`` names on this provider: (collection, fragment id) or a 404."""
    parts = urlsplit(url)
    ours = urlsplit(runtime().settings.public_url)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != ours.netloc.lower():
        abort(404, description="that url is not a page of this archive")
    path = parts.path
    if match := re.fullmatch(r"/fragments/([0-9a-f]{32})/?", path):
        fragment = approved_fragment(match.group(1))
        return fragment.collection or ALL, fragment.id, fragment
    if match := re.fullmatch(r"/collections/([^/]{1,100})/?", path):
        collection_fragments(match.group(1), 1)
        return match.group(1), None, None
    abort(404, description="that url is not a fragment or collection page")


def _dimension(name: str) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    pixels = whole_number(raw, 1, MAX_DIMENSION)
    if pixels is None:
        abort(400, description=f"{name} must be a whole number of pixels from 1 to {MAX_DIMENSION}")
    return pixels


@bp.get("/oembed")
def oembed():
    """oEmbed 1.0 for fragment and collection pages: a rich type whose html is a bare iframe."""
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "xml"):
        return json_error(501, "format must be json or xml")
    url = request.args.get("url")
    if not url:
        return json_error(400, "give the url of a fragment or collection page")
    maxwidth, maxheight = _dimension("maxwidth"), _dimension("maxheight")
    collection, fragment_id, fragment = _resolve(url)
    choice, _ = widget_choice(dict(parse_qsl(urlsplit(url).query)))
    size, width, height = fit_size(maxwidth, maxheight, choice.size)
    src = (public_url("embed_public.fragment_card", fragment_id=fragment_id) + f"?size={size}"
           if fragment_id else _frame_url(collection, choice, size))
    html = (f'<iframe src="{escape(src)}" width="{width}" height="{height}" '
            f'style="border:0" loading="lazy" referrerpolicy="no-referrer" '
            f'title="{escape(_title(collection, fragment))}"></iframe>')
    body = {
        "type": "rich", "version": "1.0", "title": _title(collection, fragment),
        "provider_name": "Samizdat", "provider_url": runtime().settings.public_url,
        "cache_age": OEMBED_CACHE_AGE, "html": html, "width": width, "height": height,
    }
    if fragment is not None and fragment.site_name:
        body["author_name"] = fragment.site_name
        body["author_url"] = fragment.source_url
    if fmt == "json":
        response = jsonify(body)
    else:
        root = ET.Element("oembed")
        for key, value in body.items():
            ET.SubElement(root, key).text = str(value)
        xml = '<?xml version="1.0" encoding="utf-8" standalone="yes"?>' + ET.tostring(root, encoding="unicode")
        response = Response(xml.encode(), mimetype="text/xml")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = f"public, max-age={OEMBED_CACHE_AGE}"
    return response


def _title(collection: str, fragment: Fragment | None) -> str:
    if fragment is not None:
        return fragment.title or fragment.site_name or "A fragment of a censored page"
    return f"Censored words: {collection}"


@bp.get("/fragments/<fragment_id>/card")
def fragment_card(fragment_id: str):
    """One fragment as a small framed card (the oEmbed iframe of a fragment page); no script."""
    fragment = approved_fragment(fragment_id)
    size = request.args.get("size", "card")
    if size not in SIZES:
        abort(400, description=f"size must be one of {', '.join(SIZES)}")
    response = Response(render_template(
        "embed/card.html", fragment=fragment, size=size,
        reader_link=runtime().settings.public_url.rstrip("/")
        + capture_link(fragment.capture_id, fragment.split_text),
    ))
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
    )
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def _atom_time(value: datetime | None) -> str:
    value = value or datetime.now(timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@bp.get("/collections/<name>/feed.atom")
def collection_feed(name: str):
    """An Atom feed (RFC 4287) of the collection's newest published fragments."""
    items = collection_fragments(name, FEED_ENTRIES)
    ns = "http://www.w3.org/2005/Atom"
    ET.register_namespace("", ns)
    feed = ET.Element(f"{{{ns}}}feed")
    self_url = public_url("embed_public.collection_feed", name=name)

    def sub(parent, tag, text=None, **attrs):
        node = ET.SubElement(parent, f"{{{ns}}}{tag}", attrs)
        if text is not None:
            node.text = text
        return node

    sub(feed, "id", self_url)
    sub(feed, "title", f"Samizdat: censored words ({name})")
    sub(feed, "updated", _atom_time(max((f.reviewed_at or f.fetched_at for f in items), default=None)))
    sub(feed, "link", rel="self", type="application/atom+xml", href=self_url)
    sub(feed, "link", rel="alternate", type="text/html",
        href=public_url("embed_public.collection_page", name=name))
    author = sub(feed, "author")
    sub(author, "name", "Samizdat archivists")
    for fragment in items:
        entry = sub(feed, "entry")
        page = public_url("embed_public.fragment_page", fragment_id=fragment.id)
        sub(entry, "id", page)
        sub(entry, "title", fragment.title or fragment.source_url)
        sub(entry, "updated", _atom_time(fragment.reviewed_at or fragment.fetched_at))
        sub(entry, "published", _atom_time(fragment.fetched_at))
        sub(entry, "link", rel="alternate", type="text/html", href=page)
        sub(entry, "link", rel="via", href=fragment.source_url)
        text = fragment.text + (" [edited by an archivist]" if fragment.original_text else "")
        sub(entry, "content", text, type="text")
    body = b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(feed, encoding="utf-8", xml_declaration=False)
    response = Response(body, mimetype="application/atom+xml")
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "public, max-age=300"
    return response
