"""A capture's files, replayed safely from the archive (no account, no cookie), and the links
to a capture's reader view (which archive/ serves).

Every response is sandboxed by Content-Security-Policy (no scripts can run, nothing loads from
elsewhere). ``offline.html`` and its assets render; the page as served, the WARC and the
manifest are downloads, never rendered from this origin.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, Response, abort, request

from mirror.models import Capture
from samizdat.errors import StorageError
from samizdat.web import db_session, runtime

bp = Blueprint("reader", __name__)

REPLAY_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
RENDERED_ROLES = {"offline", "asset"}


def capture_link_path(capture_id: int, text: str | None = None) -> str:
    """The path of a capture's reader view, with a #:~:text= link to ``text`` (no app context)."""
    # The reader view shows the extracted text in whole paragraphs, which is where a fragment's
    # words are found as split (the offline copy's markup can break a passage in two).
    path = f"/captures/{capture_id}/"
    return path + text_directive(text) if text else path


def capture_link(capture_id: int, text: str | None = None, external: bool = False) -> str:
    """The reader URL of a capture (its reader view); with ``text``, a #:~:text= link to it."""
    root = request.url_root.rstrip("/") if external else request.script_root
    return root + capture_link_path(capture_id, text)


# Archivist pages and the fragment review link to a capture by this, wherever its view lives.
bp.add_app_template_global(capture_link, "capture_link")


def text_directive(text: str) -> str:
    """The ``#:~:text=`` fragment that makes a browser scroll to and highlight ``text``."""
    words = text.rstrip("…").split()
    if len(words) <= 8:
        return f"#:~:text={_fragment_quote(' '.join(words))}"
    return f"#:~:text={_fragment_quote(' '.join(words[:5]))},{_fragment_quote(' '.join(words[-3:]))}"


def _fragment_quote(text: str) -> str:
    # Text-fragment syntax reserves "-", "," and "&"; quote() leaves "-" alone, so do it by hand.
    return quote(text, safe="").replace("-", "%2D")


@bp.get("/captures/<int:capture_id>/<path:name>")
def capture_file(capture_id: int, name: str):
    """One file of a capture, from the local spool, under a sandboxing CSP."""
    capture = db_session().get(Capture, capture_id)
    part = None if capture is None else next((p for p in capture.parts if p.name == name), None)
    if part is None:
        abort(404, f"capture {capture_id} has no file {name!r}")
    try:
        data = runtime().stores["local"].get(part.sha256)
    except StorageError as exc:
        abort(503, f"the file is not available here right now: {exc}")
    response = Response(data, mimetype="application/octet-stream")
    if part.role in RENDERED_ROLES:
        response.mimetype = part.content_type or "application/octet-stream"
    else:
        filename = f"capture-{capture_id}-{name.replace('/', '-')}"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Content-Security-Policy"] = REPLAY_CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    # The sandbox gives a replayed page an opaque origin (so it can never act as this site, nor
    # reach an archivist's session), and to an opaque origin even this site is another origin:
    # "same-origin" would make Chromium block every image and stylesheet of the replay. The
    # rendered files are public archive content anyway; downloads stay same-origin.
    response.headers["Cross-Origin-Resource-Policy"] = (
        "cross-origin" if part.role in RENDERED_ROLES else "same-origin"
    )
    # Content-addressed: a capture's files never change.
    response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
    response.headers["ETag"] = part.sha256
    return response
