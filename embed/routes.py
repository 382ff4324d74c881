"""Public endpoints that supporters' pages call; they set no cookies and log no addresses."""

from __future__ import annotations

from flask import Blueprint, jsonify, url_for

from fragments.store import fragment_as_dict, random_approved
from mirror.pipeline import OFFLINE_NAME
from mirror.reader import text_directive
from samizdat.web import db_session, json_error

bp = Blueprint("embed", __name__)


@bp.get("/api/fragments/random")
def random_fragment():
    """One random approved fragment as JSON; 404 with a message when there are none."""
    fragment = random_approved(db_session())
    if fragment is None:
        return json_error(404, "no approved fragments yet")
    # The reader link opens the archived page at this passage (#:~:text=).
    link = url_for("reader.capture_file", capture_id=fragment.capture_id, name=OFFLINE_NAME, _external=True)
    response = jsonify({**fragment_as_dict(fragment), "link": link + text_directive(fragment.text)})
    # Every page view should show a fresh fragment, so neither browsers nor proxies may cache it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
