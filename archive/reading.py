"""The reader view of a capture: its extracted text as a clean, fast page (where the fragments'
``#:~:text=`` links land), and everything needed to verify a copy and take it away.

The page's HTML is never shown here, only the text extracted from it, escaped by the template.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import quote

from flask import Blueprint, Response, abort, redirect, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext
from sqlalchemy import select

from accounts.auth import secure_page
from archive.static_copy import copy_log_location, in_static_copy
from fragments.extract import Extraction, extract_main_text
from mirror.models import Capture, Replica
from mirror.pipeline import OK, UNCHANGED, readable_html
from mirror.replicas import STORED
from mirror.reader import capture_link_path
from provenance.appender import logged_index
from provenance.evidence import LogEntry, log_entry
from samizdat.errors import StorageError
from samizdat.i18n import keep_language_in_links
from samizdat.web import db_session, runtime

bp = Blueprint("reading", __name__, template_folder="templates")
keep_language_in_links(bp)

# Reader views of a capture change only when its manifest and CIDs arrive: a short public cache.
READER_CACHE_CONTROL = "public, max-age=300"

# What each kind of file is, for a reader, in the order the page lists them (translated when shown).
PART_LABELS = {
    "page": lazy_gettext("The page as served (the original bytes)"),
    "warc": lazy_gettext("The WARC (every request and response, as a web archive)"),
    "manifest": lazy_gettext("The manifest (where it came from; every file's sha256 and CID)"),
    "offline": lazy_gettext("The offline copy (scripts removed)"),
    "asset": lazy_gettext("An image or stylesheet of the page"),
    "screenshot": lazy_gettext("The screenshot (the whole page as the archive's browser showed it)"),
    "thumbnail": lazy_gettext("A small picture of the page's first screen"),
}
_PART_ORDER = {role: index for index, role in enumerate(PART_LABELS)}


def capture_file_path(capture_id: int, name: str) -> str:
    """The path of one stored file of a capture (the one place this URL is built)."""
    return f"/captures/{capture_id}/files/{quote(name, safe='/')}"


def capture_replay_path(capture_id: int) -> str:
    """The path of a capture's sandboxed replay."""
    return f"/captures/{capture_id}/replay"


def source_timeline_path(source_id: int) -> str:
    """The path of a source's timeline."""
    return f"/archive/{source_id}"


# --- the text, extracted once per page (by sha256) per process ------------------------------------

_CACHE_SIZE = 64
_cache: OrderedDict[tuple, Extraction] = OrderedDict()
_cache_lock = threading.Lock()


def capture_text(capture: Capture) -> Extraction | None:
    """The extracted main text of a stored capture's page; None when its page holds no text
    (a PDF, an image). 503 when the spool cannot give the bytes back right now."""
    page = next((p for p in capture.parts if p.role == "page"), None)
    if page is None or readable_html(b"", capture.content_type, capture.charset) is None:
        return None  # a PDF or an image: there is no text to extract (nor bytes to read)
    # Plain text is wrapped as UTF-8 HTML; only a real HTML page is read in its own charset.
    charset = capture.charset if capture.content_type != "text/plain" else "utf-8"
    key = (page.sha256, capture.content_type, charset)
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    try:
        body = runtime().stores["local"].get(page.sha256)
    except StorageError:
        # Readers get states, not paths or back-end errors.
        abort(503, _("the archived page cannot be read here right now; try again later"))
    extraction = extract_main_text(
        readable_html(body, capture.content_type, capture.charset), url=capture.url, charset=charset
    )
    with _cache_lock:
        _cache[key] = extraction
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return extraction


def stored_capture(capture_id: int) -> Capture:
    """The capture with this id that holds stored bytes; a friendly 404 for any other id."""
    capture = db_session().get(Capture, capture_id)
    if capture is None:
        abort(404, _("there is no capture %(id)d in the archive", id=capture_id))
    if capture.status != OK:
        abort(404, _("capture %(id)d stored nothing: that attempt to fetch the page failed",
                      id=capture_id))
    return capture


# --- verify and take away -------------------------------------------------------------------------


@dataclass(frozen=True)
class Download:
    """One file of a capture as the reader view offers it: where to get it and how to check it."""

    name: str
    role: str
    label: str
    size: int
    sha256: str
    url: str
    cid: str | None
    gateway_links: tuple[str, ...]


def gateway_links(cid: str, name: str | None = None) -> tuple[str, ...]:
    """``cid`` (and ``name`` inside it) through every configured public gateway."""
    suffix = f"/{quote(name, safe='/')}" if name else ""
    return tuple(f"{g}/ipfs/{cid}{suffix}" for g in runtime().settings.gateway_list)


def capture_downloads(capture: Capture) -> list[Download]:
    """Every stored file of a capture with its sha256 and, once IPFS holds it, its CID."""
    shas = {p.sha256 for p in capture.parts}
    cids = dict(db_session().execute(
        select(Replica.sha256, Replica.locator).where(
            Replica.sha256.in_(shas), Replica.backend == "ipfs", Replica.state == STORED
        )
    ).all()) if shas else {}
    parts = sorted(capture.parts, key=lambda p: (_PART_ORDER.get(p.role, len(_PART_ORDER)), p.id))
    return [
        Download(
            name=p.name, role=p.role, label=PART_LABELS.get(p.role, p.role), size=p.size,
            sha256=p.sha256, url=capture_file_path(capture.id, p.name), cid=cids.get(p.sha256),
            gateway_links=gateway_links(cids[p.sha256]) if cids.get(p.sha256) else (),
        )
        for p in parts
    ]


def capture_log_entry(capture: Capture) -> LogEntry | None:
    """The capture's entry in the published log; None while no signed checkpoint covers it."""
    index = logged_index(db_session(), capture.id)
    if index is None:
        return None
    settings = runtime().settings
    # A page of the static copy points at the copy's own log/, so a mirror verifies on its own.
    # It shows no proof: a proof names the current checkpoint, so every page of the copy would
    # change with each one (the copy is rewritten incrementally); the copy's log/ holds it all.
    copy = in_static_copy()
    url = copy_log_location() if copy else f"{settings.public_url.rstrip('/')}/log"
    return log_entry(settings, index, url, with_proof=not copy)


# --- the page -------------------------------------------------------------------------------------


def reader_page(html: str, status: int = 200) -> Response:
    """A reader page: the strict CSP (no script, nothing from elsewhere), no cookie."""
    response = secure_page(html, status)
    response.headers["Cache-Control"] = READER_CACHE_CONTROL
    return response


@bp.get("/captures/<int:capture_id>/")
def read_capture(capture_id: int):
    """A capture's text as a clean page, its files, and how to check them."""
    capture = db_session().get(Capture, capture_id)
    if capture is not None and capture.status == UNCHANGED and capture.same_as_id:
        # The same bytes were stored once, by the capture it matched: read that one.
        return redirect(capture_link_path(capture.same_as_id))
    capture = stored_capture(capture_id)
    extraction = capture_text(capture)
    title = capture.title or (extraction.title if extraction else None) or capture.url
    return reader_page(render_template(
        "archive/reader.html",
        capture=capture,
        title=title,
        blocks=extraction.blocks if extraction else [],
        language=extraction.language if extraction else None,
        downloads=capture_downloads(capture),
        log_entry=capture_log_entry(capture),
        directory_links=gateway_links(capture.cid) if capture.cid else (),
        replay_url=capture_replay_path(capture.id),
        timeline_url=source_timeline_path(capture.source_id),
        screenshots={p.role: capture_file_path(capture.id, p.name) for p in capture.parts
                     if p.role in ("screenshot", "thumbnail")},
    ))
