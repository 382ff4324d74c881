"""Public endpoints that supporters' pages call; they set no cookies and log no addresses."""

from __future__ import annotations

from flask import Blueprint, jsonify, send_from_directory

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


@bp.get("/embed/packs/<path:name>")
def pack_file(name: str):
    """A published pack file: shards cache forever (content-addressed), indexes for a minute."""
    if not name.endswith(".json"):
        return json_error(404, "no such pack file")
    # safe_join refuses "..", absolute paths and the like: only files under packs/ are served.
    response = send_from_directory(runtime().settings.public_path / "packs", name,
                                   mimetype="application/json", max_age=0, conditional=True)
    if name.startswith("shards/"):
        response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    else:
        response.headers["Cache-Control"] = "public, max-age=60"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
