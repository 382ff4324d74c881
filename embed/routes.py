"""Public endpoints that supporters' pages call; they set no cookies and log no addresses."""

from __future__ import annotations

from flask import Blueprint, jsonify

from fragments.store import fragment_as_dict, random_approved
from mirror.reader import capture_link
from samizdat.web import db_session, json_error

bp = Blueprint("embed", __name__)


@bp.get("/api/fragments/random")
def random_fragment():
    """One random approved fragment as JSON; 404 with a message when there are none."""
    fragment = random_approved(db_session())
    if fragment is None:
        return json_error(404, "no approved fragments yet")
    # The reader link opens the archived page at this passage (#:~:text=): the split text, since
    # an archivist's edited wording is not on the page and would highlight nothing.
    link = capture_link(fragment.capture_id, fragment.split_text, external=True)
    response = jsonify({**fragment_as_dict(fragment), "link": link})
    # Every page view should show a fresh fragment, so neither browsers nor proxies may cache it.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
