"""Links into a capture for readers (``capture_link`` and friends, used by embed/).

A capture's files and its replay page are served by archive/replay.py.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, abort, redirect, url_for

from mirror.models import Capture
from mirror.pipeline import OFFLINE_NAME
from samizdat.web import db_session

bp = Blueprint("reader", __name__)


def capture_link_path(capture_id: int, text: str | None = None) -> str:
    """The path of a capture's offline copy, with a #:~:text= link to ``text`` (no app context)."""
    path = f"/captures/{capture_id}/files/{OFFLINE_NAME}"
    return path + text_directive(text) if text else path


def capture_link(capture_id: int, text: str | None = None, external: bool = False) -> str:
    """The reader URL of a capture's offline copy; with ``text``, a #:~:text= link to it."""
    # Straight to the offline copy: a text directive is not carried through every redirect.
    # By endpoint name: archive/replay.py serves it, and mirror/ never imports archive/.
    url = url_for(
        "replay.capture_file", capture_id=capture_id, name=OFFLINE_NAME, _external=external
    )
    return url + text_directive(text) if text else url


def text_directive(text: str) -> str:
    """The ``#:~:text=`` fragment that makes a browser scroll to and highlight ``text``."""
    words = text.rstrip("…").split()
    if len(words) <= 8:
        return f"#:~:text={_fragment_quote(' '.join(words))}"
    return f"#:~:text={_fragment_quote(' '.join(words[:5]))},{_fragment_quote(' '.join(words[-3:]))}"


def _fragment_quote(text: str) -> str:
    # Text-fragment syntax reserves "-", "," and "&"; quote() leaves "-" alone, so do it by hand.
    return quote(text, safe="").replace("-", "%2D")


@bp.get("/captures/<int:capture_id>/")
def read_capture(capture_id: int):
    """The capture as a reader sees it: its offline copy, or its first file when it has none."""
    capture = db_session().get(Capture, capture_id)
    if capture is None or capture.status != "ok":
        # Readers reach these from links: the error handler gives browsers a page, scripts JSON.
        abort(404, f"no stored capture with id {capture_id}")
    offline = next((p for p in capture.parts if p.role == "offline"), None)
    name = offline.name if offline else capture.parts[0].name
    return redirect(url_for("replay.capture_file", capture_id=capture_id, name=name))
