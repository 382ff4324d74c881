"""Links into a capture for readers (``capture_link`` and friends, used by embed/ and templates).

The pages themselves live in archive/: the reader view (archive/reading.py) and the replay page
and files (archive/replay.py). These links are built here, by path, so that mirror/ and embed/
never import archive/.
"""

from __future__ import annotations

from urllib.parse import quote

from flask import Blueprint, request

bp = Blueprint("reader", __name__)


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
