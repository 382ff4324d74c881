"""Public endpoints that supporters' pages call; they set no cookies and log no addresses."""

from __future__ import annotations

from flask import Blueprint, jsonify, send_from_directory

from embed.publish import EMBED_JS, FRAME_HTML
from fragments.store import fragment_as_dict, random_approved
from mirror.reader import capture_link
from samizdat.web import db_session, json_error, runtime

bp = Blueprint("embed", __name__)


@bp.get("/api/fragments/random")
def random_fragment():
    """One random approved fragment as JSON; 404 with a message when there are none."""
    fragment = random_approved(db_session())
    if fragment is None:
        return json_error(404, "no approved fragments yet")
    # The reader link opens the archived page at this passage (#:~:text=).
    link = capture_link(fragment.capture_id, fragment.text, external=True)
    response = jsonify({**fragment_as_dict(fragment), "link": link})
    # Every page view should show a fresh fragment, so neither browsers nor proxies may cache it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _public_file(name: str, cache_control: str, mimetype: str):
    """A published file from the public directory, with CORS open and no cookie."""
    # send_from_directory refuses "..", absolute paths and the like: only published files leave.
    response = send_from_directory(runtime().settings.public_path, name, mimetype=mimetype,
                                   max_age=0, conditional=True)
    response.headers["Cache-Control"] = cache_control
    response.headers["Access-Control-Allow-Origin"] = "*"
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
    """The published embed.js (short-lived cache: it changes when the key or origins do)."""
    return _public_file(EMBED_JS, "public, max-age=300", "text/javascript")


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
