"""Public endpoints that supporters' pages call; they set no cookies and log no addresses."""

from __future__ import annotations

import json
import re

from flask import Blueprint, Flask, Response, current_app, request, send_from_directory

from embed.pool import FragmentPool, FragmentReader, FragmentRow, Key
from embed.publish import EMBED_JS, FRAME_HTML
from fragments.store import fragment_as_dict
from mirror.reader import capture_link_path
from provenance.tiles import CHECKPOINT_PATH
from samizdat.web import json_error, runtime

bp = Blueprint("embed", __name__)
POOL_KEY = "embed.pool"
READER_KEY = "embed.reader"
# Nothing to pick: rebuild the pool if it is older than this (cheap when it is empty).
EMPTY_RECHECK_SECONDS = 2.0
VERSIONED_SCRIPT = re.compile(r"embed\.[0-9a-f]{16}\.js")
RANDOM_PATH = "/api/fragments/random"
# What a served random fragment carries besides its type and length, whichever path serves it
# (embed/fastpath.py answers most requests before Flask; the view below answers the rest):
# every page view shows a fresh fragment, so neither browsers nor proxies may cache it; any site
# may read it; and it leaves no trace (the app's own no-tracking headers).
RANDOM_RESPONSE_HEADERS = (
    ("Cache-Control", "no-store"),
    ("Access-Control-Allow-Origin", "*"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
)


@bp.after_request
def open_to_every_origin(response):
    """Supporters' pages on any site may read these (errors too, so widgets can tell why)."""
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def fragment_pool(app: Flask | None = None) -> FragmentPool:
    """This worker's pool of approved fragment ids (built on first use, never at import)."""
    app = app or current_app
    pool = app.extensions.get(POOL_KEY)
    if pool is None:
        rt = app.extensions["samizdat"]
        pool = app.extensions.setdefault(
            POOL_KEY, FragmentPool(rt.Session, rt.settings.public_path / "packs" / "catalog.json",
                                   checkpoint=rt.settings.log_path / CHECKPOINT_PATH)
        )
    return pool


def fragment_reader(app: Flask | None = None) -> FragmentReader:
    """This worker's session-free reader of single fragments."""
    app = app or current_app
    reader = app.extensions.get(READER_KEY)
    if reader is None:
        reader = app.extensions.setdefault(READER_KEY, FragmentReader(app.extensions["samizdat"].engine))
    return reader


def _serialize(fragment: FragmentRow, public_url: str) -> tuple[bytes, bytes]:
    """The fragment's JSON and text bodies, with a link to the passage as captured."""
    base = public_url.rstrip("/")
    link = base + capture_link_path(fragment.capture_id, fragment.split_text)
    body = json.dumps({**fragment_as_dict(fragment), "link": link}, ensure_ascii=False).encode()
    credit = fragment.title or fragment.site_name or fragment.source_url
    text = f"{fragment.text}\n\n— {credit}, {fragment.source_url}\n{link}\n".encode()
    return body, text


def pick_bodies(app: Flask, key: Key) -> tuple[bytes, bytes] | None:
    """The bodies of a random approved fragment for ``key``: one primary-key lookup, which also
    re-checks its status, so an edit or a rejection counts from the next request on. Several
    misses in a row mean the pool is stale, and it is rebuilt now rather than at the next publish."""
    pool = fragment_pool(app)
    for attempt in range(4):
        if attempt == 3:
            pool.invalidate()
        fragment_id = pool.snapshot().pick(key)
        if fragment_id is None:
            fragment_id = pool.refresh_if_older(EMPTY_RECHECK_SECONDS).pick(key)
        if fragment_id is None:
            return None
        fragment = fragment_reader(app).read(fragment_id)
        if fragment is not None:
            return _serialize(fragment, app.extensions["samizdat"].settings.public_url)
    return None


@bp.get(RANDOM_PATH)
def random_fragment():
    """One random approved fragment (?collection=&lang=) as JSON, or as text with ?format=text."""
    collection = request.args.get("collection") or None
    language = request.args.get("lang") or None
    fmt = request.args.get("format", "json")
    if fmt not in ("json", "text"):
        return json_error(400, "format must be json or text")
    snapshot = fragment_pool().snapshot()
    if collection == "all":
        collection = None
    if collection is not None and collection not in snapshot.collections:
        return json_error(404, f"no collection named {collection[:100]!r} has published fragments")
    if language is not None and language not in snapshot.languages:
        return json_error(404, f"no published fragments in language {language[:20]!r}")
    bodies = pick_bodies(current_app, (collection, language))
    if bodies is None:
        return json_error(404, "no approved fragments yet")
    if fmt == "text":
        response = Response(bodies[1], mimetype="text/plain")
    else:
        response = Response(bodies[0], mimetype="application/json")
    response.headers.update(RANDOM_RESPONSE_HEADERS)
    return response


def _public_file(name: str, cache_control: str, mimetype: str):
    """A published file from the public directory, with CORS open and no cookie."""
    # send_from_directory refuses "..", absolute paths and the like: only published files leave.
    response = send_from_directory(runtime().settings.public_path, name, mimetype=mimetype,
                                   max_age=0, conditional=True)
    response.headers["Cache-Control"] = cache_control
    return response


@bp.get("/embed/packs/<path:name>")
def pack_file(name: str):
    """A published pack file: shards cache forever (content-addressed), indexes for a minute."""
    if not name.endswith(".json"):
        return json_error(404, "no such pack file")
    immutable = name.startswith("shards/")
    return _public_file(f"packs/{name}",
                        "public, max-age=31536000, immutable" if immutable else "public, max-age=60",
                        "application/json")


@bp.get("/embed/embed.js")
def embed_script():
    """The latest embed.js (short-lived cache: it changes when the key or origins do)."""
    return _public_file(EMBED_JS, "public, max-age=300", "text/javascript")


@bp.get("/embed/<name>.js")
def embed_script_version(name: str):
    """One published version of embed.js, as snippets name it (immutable)."""
    if not VERSIONED_SCRIPT.fullmatch(f"{name}.js"):
        return json_error(404, "no such script")
    return _public_file(f"{name}.js", "public, max-age=31536000, immutable", "text/javascript")


@bp.get("/embed/frame")
def embed_frame():
    """The static frame page for hosts that strip scripts (?collection=&size=&theme=&lang=)."""
    response = _public_file(FRAME_HTML, "public, max-age=300", "text/html")
    # Its only script is our own embed.js; fragment data never becomes markup (textContent).
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; connect-src *; style-src 'unsafe-inline'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'"
    )
    return response
