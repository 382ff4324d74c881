"""Replay: a capture's stored files, and the page that shows its offline copy safely.

Two walls keep an archived page from acting. The offline copy is made closed (mirror/requisites.py:
cleaned by lxml_html_clean, every URL pointing into the capture or dropped), and every file is
served here under ``Content-Security-Policy: sandbox`` with ``default-src 'none'``: no script
runs, nothing loads from elsewhere, and the document gets an opaque origin, so it can never act
as this site nor reach an archivist's session. The replay page frames it in an ``<iframe sandbox>``
(no allow-scripts, no allow-same-origin) under a banner that stays outside the archived document.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, redirect, render_template, request, url_for
from flask_babel import gettext as _

from mirror.models import Capture, CapturePart
from mirror.pipeline import OFFLINE_NAME
from samizdat.errors import StorageError
from samizdat.i18n import keep_language_in_links
from samizdat.web import db_session, runtime

bp = Blueprint("replay", __name__, template_folder="templates")
# The replay page keeps the language in its links; a capture's files have one URL each.
keep_language_in_links(bp, except_endpoints=("capture_file", "old_file_url"))

# The files' policy: an opaque origin (sandbox), nothing from elsewhere, styles and images only
# from the archive. frame-ancestors 'self' lets the replay page frame them, and nobody else.
FILE_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
# The replay page's own policy: no script at all, its stylesheet, and the framed capture.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; frame-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
# Roles a browser may render; every other file (the page as served, WARC, manifest) downloads.
# A browser capture's screenshots are PNGs the pipeline made, shown in the reader view.
RENDERED_ROLES = {"offline", "asset", "screenshot", "thumbnail"}


def _stored_capture(capture_id: int) -> Capture:
    """The capture with stored files, or a friendly 404."""
    capture = db_session().get(Capture, capture_id)
    if capture is None or capture.status != "ok":
        abort(404, _("no stored capture with id %(id)d", id=capture_id))
    return capture


def _part(capture_id: int, name: str) -> CapturePart:
    """The capture's file called ``name``, or a friendly 404."""
    capture = db_session().get(Capture, capture_id)
    part = None if capture is None else next((p for p in capture.parts if p.name == name), None)
    if part is None:
        abort(404, _("capture %(id)d has no file %(name)s", id=capture_id, name=repr(name)))
    return part


@bp.get("/captures/<int:capture_id>/files/<path:name>")
def capture_file(capture_id: int, name: str) -> Response:
    """One file of a capture, from the local spool, under a sandboxing CSP."""
    part = _part(capture_id, name)
    try:
        data = runtime().stores["local"].get(part.sha256)
    except StorageError as exc:
        abort(503, _("the file is not available here right now: %(reason)s", reason=exc))
    response = Response(data, mimetype="application/octet-stream")
    if part.role in RENDERED_ROLES:
        response.mimetype = part.content_type or "application/octet-stream"
    else:
        filename = f"capture-{capture_id}-{name.replace('/', '-')}"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Content-Security-Policy"] = FILE_CSP
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


@bp.get("/captures/<int:capture_id>/replay")
def replay_page(capture_id: int) -> Response:
    """The archived page framed under a banner: what it is, of which URL, when, how to verify."""
    capture = db_session().get(Capture, capture_id)
    if capture is not None and capture.status == "unchanged" and capture.same_as_id is not None:
        # An unchanged capture stored nothing of its own: show the bytes it matched.
        return redirect(url_for("replay.replay_page", capture_id=capture.same_as_id))
    capture = _stored_capture(capture_id)
    offline = next((p for p in capture.parts if p.role == "offline"), None)
    page = next((p for p in capture.parts if p.role == "page"), None)
    root = request.script_root
    body = render_template(
        "archive/replay.html",
        capture=capture,
        offline_url=url_for("replay.capture_file", capture_id=capture.id, name=offline.name)
        if offline
        else None,
        page_url=url_for("replay.capture_file", capture_id=capture.id, name=page.name)
        if page
        else None,
        # The reader view and the timeline belong to other modules of archive/; plain paths
        # here keep this page working whichever of them is registered.
        reader_url=f"{root}/captures/{capture.id}/",
        timeline_url=f"{root}/archive/{capture.source_id}",
    )
    response = Response(body, mimetype="text/html")
    response.headers["Content-Security-Policy"] = PAGE_CSP
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


@bp.get("/captures/<int:capture_id>/<path:name>")
def old_file_url(capture_id: int, name: str) -> Response:
    """A file's old address (in published packs and links): moved for good under files/."""
    # The static rules (…/files/…, …/replay) are more specific and always win over this one.
    part = _part(capture_id, name)
    return redirect(url_for("replay.capture_file", capture_id=capture_id, name=part.name), 301)
