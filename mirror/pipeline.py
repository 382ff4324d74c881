"""The capture pipeline: fetch a source, spool its parts, record the capture, split it, replicate.

Data flows one way: source → capture → stored replicas → fragments.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePath

from sqlalchemy import and_, or_, select, update

from accounts.audit import Actor, record
from config.logs import log_context
from fragments.split import CaptureInfo, split_capture
from fragments.store import save_fragments
from browser.chromium import BrowserUnavailable
from browser.needed import browser_needed
from mirror.browsing import NoBrowserError, refused_target, warc_assets, with_rendered_records
from mirror.charset import detect_charset
from mirror.fetch import FetchResult
from mirror.models import Capture, CapturePart, Source
from mirror.partnames import (
    OFFLINE_NAME,
    OTHER_PAGE_NAME,
    PAGE_NAMES,
    SCREENSHOT_NAME,
    THUMBNAIL_NAME,
    WARC_NAME,
)
from mirror.replicas import ensure_replicas, replicate_capture
from mirror.requisites import (
    Requisite,
    asset_names,
    fetch_requisites,
    find_requisites,
    offline_page,
)
from mirror.storage import sha256_hex
from mirror.warc import build_document_warc, build_warc
from samizdat.db import utcnow
from samizdat.errors import FetchError, InvalidURLError, SamizdatError, StorageError, StorageFullError
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

HTML_TYPES = {"text/html", "application/xhtml+xml", ""}
OK, UNCHANGED, FAILED = "ok", "unchanged", "failed"
HTTP, BROWSER, AUTO = "http", "browser", "auto"  # capture methods; auto is a source's mode only


@dataclass(frozen=True)
class CaptureOutcome:
    """The result of one capture attempt, safe to use after its session is closed."""

    capture_id: int
    source_id: int
    url: str
    status: str
    reason: str | None
    message: str | None
    new_fragments: int
    size: int = 0
    uploaded_bytes: int = 0
    complete: bool = False


@dataclass
class RunSummary:
    """What one mirror run did, source by source."""

    ok: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    fragments: int = 0
    uploaded_bytes: int = 0

    @property
    def attempted(self) -> int:
        """How many sources the run tried."""
        return len(self.ok) + len(self.unchanged) + len(self.failed)


def _outcome(capture: Capture, new_fragments: int, uploaded: int = 0) -> CaptureOutcome:
    return CaptureOutcome(
        capture.id,
        capture.source_id,
        capture.url,
        capture.status,
        capture.error_reason,
        capture.error_message,
        new_fragments,
        capture.size or 0,
        uploaded,
        capture.complete,
    )


def _previous_success(session, source_id: int) -> Capture | None:
    """The latest capture of a source that has bytes (stored or confirmed unchanged)."""
    return session.scalars(
        select(Capture)
        .where(Capture.source_id == source_id, Capture.status.in_([OK, UNCHANGED]))
        .order_by(Capture.fetched_at.desc(), Capture.id.desc())
        .limit(1)
    ).first()


def capture_source(runtime: Runtime, source_id: int, process: bool = True) -> CaptureOutcome:
    """Capture one source and record it: ok (spooled and recorded), unchanged, or failed.

    By the source's capture mode: ``http`` fetches the page; ``browser`` renders it in Chromium
    behind a recording proxy; ``auto`` fetches it and, when the response looks script-built
    (browser.needed), renders it as well and keeps the rendered copy (without Chromium, auto keeps
    the HTTP one). With ``process`` (the default) the capture is also split and replicated before
    returning; the scheduler passes False and leaves that to its processing job, so fetching never
    waits for S3, IPFS or the splitter. Network work happens outside database transactions.
    """
    with runtime.Session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise InvalidURLError(f"no source with id {source_id}")
        url = source.url
        mode = source.capture_mode or "auto"
        previous = _previous_success(session, source.id)
        last = _Previous(
            previous.id, previous.sha256, previous.capture_method
        ) if previous is not None else None
    fetched_at = utcnow()
    if mode == BROWSER:
        return _capture_in_browser(runtime, source_id, url, fetched_at, last, None, process)
    try:
        result = runtime.fetcher.fetch(url)
    except FetchError as exc:
        return _record_failure(
            runtime, source_id, url, fetched_at, exc.reason, str(exc), exc.status, exc.final_url,
            method=HTTP,
        )
    if mode == AUTO and result.content_type in HTML_TYPES and result.content_type:
        try:
            reason = browser_needed(result.body, charset=result.charset)
        except Exception as exc:  # noqa: BLE001 - a guess must never cost the capture itself
            # e.g. a full disk when the language model loads: keep what HTTP gave, and let the
            # steps that store it report what is really wrong.
            log.warning("auto's test of %s failed (%s): kept as HTTP", url, exc)
            reason = None
        if reason is not None:
            reason = reason[:255]  # the column's width; the reasons are one short line
            if runtime.browser.available():
                return _capture_in_browser(runtime, source_id, url, fetched_at, last, reason, process)
            log.info("%s looks script-built (%s), but there is no Chromium: kept as HTTP", url, reason)
    digest = sha256_hex(result.body)
    if last is not None and last.sha256 == digest and last.method != BROWSER:
        return _record_unchanged(
            runtime, source_id, last.id, fetched_at, HTTP, None, result.final_url, result.status,
            result.content_type or None, result.charset,
        )
    requisites: list[Requisite] = []
    if result.content_type in HTML_TYPES:
        s = runtime.settings
        urls = find_requisites(result.body, result.final_url, result.charset, s.requisites_max_count)
        requisites, notes = fetch_requisites(runtime.fetcher, urls, s.requisites_max_bytes, s.fetch_timeout)
        for note in notes:
            log.info("requisite of %s left out: %s", url, note)
    try:
        parts = _spool_parts(runtime, result, requisites)
    except StorageError as exc:
        return _storage_failure(runtime, source_id, url, fetched_at, exc, result.status, result.final_url, HTTP)
    capture = Capture(
        source_id=source_id,
        status=OK,
        url=url,
        final_url=result.final_url,
        http_status=result.status,
        content_type=result.content_type or None,
        charset=result.charset,
        sha256=digest,
        size=len(result.body),
        local_key=digest,
        fetched_at=fetched_at,
        complete=False,
        capture_method=HTTP,
    )
    return _record_capture(runtime, capture, parts, process)


@dataclass(frozen=True)
class _Previous:
    """The source's latest capture with bytes: what "unchanged" is judged against."""

    id: int
    sha256: str | None
    method: str | None


def _storage_failure(
    runtime: Runtime, source_id: int, url: str, fetched_at, exc: StorageError,
    status: int | None, final_url: str | None, method: str, reason_why: str | None = None,
) -> CaptureOutcome:
    # A full disk is the operator's to fix, not the page's fault: say which it was.
    reason = "storage_full" if isinstance(exc, StorageFullError) else "storage"
    return _record_failure(
        runtime, source_id, url, fetched_at, reason, str(exc), status, final_url,
        method=method, method_reason=reason_why,
    )


def _capture_in_browser(
    runtime: Runtime,
    source_id: int,
    url: str,
    fetched_at,
    last: _Previous | None,
    reason: str | None,
    process: bool,
) -> CaptureOutcome:
    """Render the page in Chromium behind its recording proxy and record that capture.

    The page part is the rendered DOM (UTF-8), the WARC the proxy's (plus resource records of
    the DOM and screenshots), the assets the DOM uses as the proxy recorded them, and the
    full-page screenshot and its thumbnail. "Unchanged" means the same rendered DOM (sha256) as
    the previous capture, when that one was a browser capture too.
    """
    def failed(code: str, message: str, status: int | None = None, final_url: str | None = None,
               limited_by: str | None = None) -> CaptureOutcome:
        return _record_failure(runtime, source_id, url, fetched_at, code, message, status, final_url,
                               method=BROWSER, method_reason=reason, limited_by=limited_by)

    try:
        run = runtime.browser.capture(url)
    except NoBrowserError as exc:
        return failed("no-browser", f"no Chromium for browser capture: {exc}")
    except BrowserUnavailable as exc:
        return failed("browser", str(exc))
    except ValueError as exc:  # a URL the browser does not take (not http(s))
        return failed("bad_url", str(exc))
    page = run.page
    refused = refused_target(url, run.stats)
    if refused is not None and (page.status is None or page.status >= 400):
        return failed(refused, f"the recording proxy refused {url}: {refused}", page.status, page.final_url)
    if page.status is None or not page.dom_html:
        notes = "; ".join(page.notes) or "no response"
        return failed("browser", f"the browser got no page: {notes}", page.status, page.final_url,
                      run.limited_by)
    if page.status >= 400:
        return failed("http_error", f"HTTP {page.status}", page.status, page.final_url)
    dom = page.dom_html.encode("utf-8")
    digest = sha256_hex(dom)
    if last is not None and last.sha256 == digest and last.method == BROWSER:
        return _record_unchanged(
            runtime, source_id, last.id, fetched_at, BROWSER, reason, page.final_url, page.status,
            "text/html", "utf-8",
        )
    s = runtime.settings
    assets = warc_assets(run.warc, dom, page.final_url, s.requisites_max_count, s.requisites_max_bytes)
    files = [
        ("page", PAGE_NAMES["text/html"], dom, "text/html"),
        ("warc", WARC_NAME, with_rendered_records(run, url, dom), "application/warc"),
    ]
    if page.screenshot_png:
        files.append(("screenshot", SCREENSHOT_NAME, page.screenshot_png, "image/png"))
    if page.thumbnail_png:
        files.append(("thumbnail", THUMBNAIL_NAME, page.thumbnail_png, "image/png"))
    files += [("asset", name, body, kind) for name, body, kind in assets]
    try:
        parts = _spool(runtime, files)
    except StorageError as exc:
        return _storage_failure(runtime, source_id, url, fetched_at, exc, page.status, page.final_url,
                                BROWSER, reason)
    capture = Capture(
        source_id=source_id,
        status=OK,
        url=url,
        final_url=page.final_url,
        http_status=page.status,
        content_type="text/html",
        charset="utf-8",
        sha256=digest,
        size=len(dom),
        local_key=digest,
        fetched_at=fetched_at,
        complete=False,
        capture_method=BROWSER,
        method_reason=reason,
        limited_by=run.limited_by,
    )
    if run.limited_by:
        log.info("browser capture of %s ended by %s", url, run.limited_by)
    return _record_capture(runtime, capture, parts, process)


def _record_capture(
    runtime: Runtime,
    capture: Capture,
    parts: list[CapturePart],
    process: bool,
    audited: tuple[Actor, str] | None = None,
) -> CaptureOutcome:
    """Commit a spooled capture with its parts and pending replicas; process it if asked.

    ``audited`` (actor, file name): an uploaded document, recorded in the same transaction.
    """
    with runtime.Session() as session:
        capture.parts = parts
        session.add(capture)
        session.flush()
        for part in parts:
            ensure_replicas(session, runtime, part.sha256, part.size)
        if audited is not None:
            record(session, audited[0], "source.upload", "source", capture.source_id,
                   {"capture": capture.id, "file": audited[1], "bytes": capture.size})
        session.commit()
        capture_id = capture.id
        if not process:
            return _outcome(capture, 0)
    return process_capture(runtime, capture_id)


DOCUMENT_TYPES = {".html": "text/html", ".htm": "text/html", ".xhtml": "text/html", ".txt": "text/plain"}
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024


def capture_document(
    runtime: Runtime,
    source_id: int,
    data: bytes,
    filename: str,
    process: bool = True,
    actor: Actor | None = None,
) -> CaptureOutcome:
    """Record an uploaded HTML or text file as a capture of a source whose page is gone.

    It is stored, replicated and split like a fetched page; its WARC holds a ``resource``
    record, since there was no HTTP exchange. Raises SamizdatError for anything else. With
    ``actor``, the upload is recorded in the audit log.
    """
    content_type = DOCUMENT_TYPES.get(PurePath(filename or "").suffix.lower())
    if content_type is None:
        raise SamizdatError("documents must be HTML (.html, .htm) or text (.txt) files")
    if not data.strip():
        raise SamizdatError("the document is empty")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise SamizdatError(f"the document is larger than {MAX_DOCUMENT_BYTES // 2**20} MiB")
    if b"\x00" in data[:8192]:
        raise SamizdatError("the document is binary, not HTML or text")
    with runtime.Session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise InvalidURLError(f"no source with id {source_id}")
        url = source.url
    charset, _how = detect_charset(data, None)
    fetched_at = utcnow()
    warc = build_document_warc(url, data, content_type, fetched_at)
    readable = data if content_type == "text/html" else _text_as_html(data, charset)
    offline = offline_page(readable, url, charset if content_type == "text/html" else "utf-8", {})
    files = [
        ("page", PAGE_NAMES[content_type], data, content_type),
        ("warc", WARC_NAME, warc, "application/warc"),
    ]
    if offline is not None:
        files.append(("offline", OFFLINE_NAME, offline, "text/html"))
    parts = _spool(runtime, files)
    digest = sha256_hex(data)
    capture = Capture(
        source_id=source_id, status=OK, url=url, final_url=url, http_status=None,
        content_type=content_type, charset=charset, sha256=digest, size=len(data),
        local_key=digest, fetched_at=fetched_at, complete=False,
    )
    audited = (actor, filename) if actor is not None else None
    return _record_capture(runtime, capture, parts, process, audited)


def process_capture(runtime: Runtime, capture_id: int, claimed_at: datetime | None = None) -> CaptureOutcome:
    """Split a recorded capture into fragments (once) and replicate it; return its outcome.

    ``claimed_at`` is the processing claim a caller already holds (claim_captures); without it
    the capture is claimed here. Replication happens after the capture is safely recorded: a
    back-end that is down leaves pending replicas for the reconcile job, and loses nothing.
    """
    with log_context(capture_id=capture_id):
        return _process_and_replicate(runtime, capture_id, claimed_at)


def _process_and_replicate(runtime: Runtime, capture_id: int, claimed_at: datetime | None) -> CaptureOutcome:
    if claimed_at is None:
        claimed_at = _claim_processing(runtime, capture_id)
    new_fragments = _process(runtime, capture_id, claimed_at) if claimed_at is not None else 0
    report = replicate_capture(runtime, capture_id)
    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        if report.errors:
            capture.error_message = "; ".join(report.errors)[:2000]
            session.commit()
        log.info(
            "captured %s (%d bytes, %d new fragments, complete=%s)",
            capture.url, capture.size, new_fragments, capture.complete,
        )
        return _outcome(capture, new_fragments, report.uploaded_bytes)


def _claimable(runtime: Runtime, now: datetime):
    """SQL: a capture never claimed for processing, or claimed by a run that died.

    A claim (split_at) with no processed_at after the processing lease means its process was
    killed between claiming and committing; the capture is taken again.
    """
    expired = now - timedelta(seconds=runtime.settings.processing_lease_seconds)
    return or_(Capture.split_at.is_(None), and_(Capture.processed_at.is_(None), Capture.split_at < expired))


def _claim_processing(runtime: Runtime, capture_id: int) -> datetime | None:
    """Claim a capture's processing; return the claim's time, or None if it is not ours to do."""
    now = utcnow()
    with runtime.Session() as session:
        # One atomic UPDATE: the CLI and the scheduler's processing job may reach the same fresh
        # capture at once, and only one of them may split it.
        claimed = session.execute(
            update(Capture).where(Capture.id == capture_id, _claimable(runtime, now)).values(split_at=now)
        ).rowcount
        session.commit()
    return now if claimed else None


def _process(runtime: Runtime, capture_id: int, claimed_at: datetime) -> int:
    """Split a claimed capture and add its offline copy in one transaction; return new fragments.

    processed_at is set in that same transaction, so a capture either has its fragments, its
    offline copy and processed_at, or none of them (and its claim runs out and is taken again).
    """
    ours = and_(Capture.id == capture_id, Capture.split_at == claimed_at, Capture.processed_at.is_(None))
    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        try:
            page = next(p for p in capture.parts if p.role == "page")
            body = runtime.stores["local"].get(page.sha256)
            new_fragments = _split(runtime, session, capture, body)
            _add_offline_copy(runtime, session, capture, body)
            # Committed only while the claim is still ours: a run that outlived its lease and was
            # taken over must not add its work a second time.
            done = session.execute(
                update(Capture).where(ours).values(processed_at=utcnow()).execution_options(synchronize_session=False)
            ).rowcount
            if not done:
                session.rollback()
                log.warning("capture %s: processing claim lost to another run; its work is dropped", capture_id)
                return 0
            session.commit()
            return new_fragments
        except Exception:
            session.rollback()
            # Give the capture back, so the next processing run tries again.
            session.execute(update(Capture).where(ours).values(split_at=None))
            session.commit()
            raise


def _add_offline_copy(runtime: Runtime, session, capture: Capture, body: bytes) -> None:
    """Add offline.html (scripts removed, requisites pointing at the capture) to an HTML capture."""
    if (capture.content_type or "") not in HTML_TYPES or any(p.role == "offline" for p in capture.parts):
        return
    base = capture.final_url or capture.url
    assets = asset_names(
        body, base, capture.charset, runtime.settings.requisites_max_count,
        {p.name for p in capture.parts if p.role == "asset"},
    )
    offline = offline_page(body, base, capture.charset, assets)
    if offline is None:
        return
    (part,) = _spool(runtime, [("offline", OFFLINE_NAME, offline, "text/html")])
    capture.parts.append(part)
    session.flush()
    ensure_replicas(session, runtime, part.sha256, part.size)


def claim_captures(runtime: Runtime, limit: int) -> list[tuple[int, datetime]]:
    """Claim up to ``limit`` captures waiting for processing; return (capture id, claim time).

    Safe with any number of processes: on PostgreSQL the candidates are locked ``FOR UPDATE SKIP
    LOCKED`` (a capture another worker is claiming is passed over), and on both databases the
    UPDATE repeats the claimable condition, so a capture is claimed by one process only.
    """
    if limit < 1:
        return []
    now = utcnow()
    candidates = (
        select(Capture.id)
        .where(Capture.status == OK, _claimable(runtime, now))
        .order_by(Capture.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with runtime.Session() as session:
        ids = list(session.scalars(candidates))
        if not ids:
            session.rollback()
            return []
        claimed = session.scalars(
            update(Capture)
            .where(Capture.id.in_(ids), _claimable(runtime, now))
            .values(split_at=now)
            .returning(Capture.id)
            .execution_options(synchronize_session=False)
        ).all()
        session.commit()
    return [(capture_id, now) for capture_id in sorted(claimed)]


def process_pending_captures(runtime: Runtime, limit: int = 200, workers: int = 2) -> int:
    """Split and replicate captures recorded without processing, or whose processing died.

    Each thread claims one capture at a time (claim_captures), so claims are never held long
    enough to outlive their lease while waiting, and workers on other machines share the rest.
    Returns how many captures this call processed.
    """
    done = 0
    lock = threading.Lock()

    def take() -> tuple[int, datetime] | None:
        nonlocal done
        with lock:
            if done >= limit:
                return None
            claimed = claim_captures(runtime, 1)
            if claimed:
                done += 1
            return claimed[0] if claimed else None

    def drain() -> None:
        while (claim := take()) is not None:
            try:
                process_capture(runtime, *claim)
            except Exception:  # one broken capture must not stop the rest; its claim was given back
                log.exception("processing capture %s failed", claim[0])

    # Two workers by default: splitting is CPU-bound and shares the interpreter with the
    # fetchers, which measured slower with more (docs/benchmarks.md).
    with ThreadPoolExecutor(workers, thread_name_prefix="process") as pool:
        for future in [pool.submit(drain) for _ in range(max(1, workers))]:
            future.result()
    return done


def _spool_parts(
    runtime: Runtime, result: FetchResult, requisites: list[Requisite]
) -> list[CapturePart]:
    """Write the page, its WARC and its assets to the spool; return the parts.

    The page and assets are the decoded bodies (what is split, served and hashed); only the WARC
    keeps every hop as received, Content-Encoding included."""
    warc = build_warc(result, [r.result for r in requisites])
    files = [
        ("page", PAGE_NAMES.get(result.content_type, OTHER_PAGE_NAME), result.body, result.content_type or None),
        ("warc", WARC_NAME, warc, "application/warc"),
    ]
    files += [("asset", r.name, r.result.body, r.result.content_type) for r in requisites]
    # The offline copy is made by process_capture: rewriting the page costs CPU that fetching
    # should not wait for.
    return _spool(runtime, files)


def _spool(runtime: Runtime, files: list[tuple[str, str, bytes, str | None]]) -> list[CapturePart]:
    """Put (role, name, bytes, content type) files in the local store; return their parts."""
    local = runtime.stores["local"]
    parts: list[CapturePart] = []
    seen: set[str] = set()
    for role, name, data, content_type in files:
        if name in seen:  # one file per name inside the capture directory
            continue
        seen.add(name)
        blob = local.put(data)
        parts.append(
            CapturePart(role=role, name=name, sha256=blob.sha256, size=blob.size, content_type=content_type)
        )
    return parts


def readable_html(body: bytes, content_type: str | None, charset: str | None) -> bytes | None:
    """The HTML whose text a capture's page holds (plain text wrapped), or None for other types.

    What the splitter reads, and what the reader's archive extracts its text from.
    """
    if content_type == "text/plain":
        return _text_as_html(body, charset)
    return body if (content_type or "") in HTML_TYPES else None


def _split(runtime: Runtime, session, capture: Capture, body: bytes) -> int:
    """Split an HTML capture into fragments; other content types are kept but not split."""
    body = readable_html(body, capture.content_type, capture.charset)
    if body is None:
        return 0
    info = CaptureInfo(
        capture_id=capture.id,
        source_url=capture.url,
        sha256=capture.sha256,
        cid=capture.cid,
        fetched_at=capture.fetched_at,
        # Attribution travels with the fragments, so fragments never has to read mirror's tables.
        country=capture.source.country,
        collection=capture.source.collection,
        category_code=capture.source.category_code,
    )
    bounds = runtime.settings
    drafts = split_capture(
        body, info, charset=capture.charset,
        min_chars=bounds.fragment_min_chars, max_chars=bounds.fragment_max_chars,
    )
    if drafts and drafts[0].capture.title:
        capture.title = drafts[0].capture.title
    # save_fragments decides review: pending, or approved in an auto-approve collection.
    return save_fragments(session, drafts)


def _text_as_html(body: bytes, charset: str | None) -> bytes:
    """Plain text as minimal HTML (one paragraph per blank-line block) for the splitter."""
    text = body.decode(charset or "utf-8", errors="replace")
    blocks = [b.strip() for b in re.split(r"\n\s*\n", text) if b.strip()]
    paragraphs = "".join(f"<p>{html.escape(' '.join(b.split()))}</p>" for b in blocks)
    return f"<html><body><article>{paragraphs}</article></body></html>".encode()


def _record_unchanged(
    runtime: Runtime,
    source_id: int,
    previous_id: int,
    fetched_at,
    method: str,
    method_reason: str | None,
    final_url: str,
    status: int | None,
    content_type: str | None,
    charset: str | None,
) -> CaptureOutcome:
    """Record a check that found the same bytes as last time: nothing uploaded, nothing split."""
    with runtime.Session() as session:
        previous = session.get(Capture, previous_id)
        capture = Capture(
            source_id=source_id,
            status=UNCHANGED,
            url=previous.url,
            final_url=final_url,
            http_status=status,
            content_type=content_type,
            charset=charset,
            capture_method=method,
            method_reason=method_reason,
            title=previous.title,
            sha256=previous.sha256,
            size=previous.size,
            local_key=previous.local_key,
            s3_key=previous.s3_key,
            cid=previous.cid,
            same_as_id=previous.same_as_id or previous.id,
            complete=True,
            split_at=fetched_at,
            processed_at=fetched_at,
            fetched_at=fetched_at,
        )
        session.add(capture)
        session.commit()
        log.info("checked %s: unchanged since capture %s", capture.url, capture.same_as_id)
        return _outcome(capture, 0)


def _record_failure(
    runtime: Runtime,
    source_id: int,
    url: str,
    fetched_at,
    reason: str,
    message: str,
    http_status: int | None = None,
    final_url: str | None = None,
    method: str | None = None,
    method_reason: str | None = None,
    limited_by: str | None = None,
) -> CaptureOutcome:
    """Record a failed attempt with its reason; nothing is stored."""
    with runtime.Session() as session:
        capture = Capture(
            source_id=source_id,
            status=FAILED,
            url=url,
            final_url=final_url,
            http_status=http_status,
            error_reason=reason,
            error_message=message[:2000],
            fetched_at=fetched_at,
            complete=False,
            capture_method=method,
            method_reason=method_reason[:255] if method_reason else None,
            limited_by=limited_by,
        )
        session.add(capture)
        session.commit()
        log.warning("capture of %s failed (%s): %s", url, reason, message)
        return _outcome(capture, 0)


def active_source_ids(runtime: Runtime) -> list[int]:
    """Ids of every active, not deleted source, in order."""
    with runtime.Session() as session:
        query = select(Source.id).where(Source.active.is_(True), Source.deleted_at.is_(None))
        return list(session.scalars(query.order_by(Source.id)))


def run_sources(
    runtime: Runtime,
    source_ids: Iterable[int] | None = None,
    on_done: Callable[[CaptureOutcome], None] | None = None,
    capture: Callable[[Runtime, int], CaptureOutcome | None] = capture_source,
) -> RunSummary:
    """Capture the given sources (all active ones when None) with bounded concurrency.

    Failures are recorded and the run goes on. ``capture`` lets the job runner wrap each attempt;
    it returns None for an attempt that did not happen (a job another process had taken).
    """
    ids = active_source_ids(runtime) if source_ids is None else list(source_ids)
    summary = RunSummary()

    def account(outcome: CaptureOutcome | None) -> None:
        if outcome is None:
            return
        if outcome.status == OK:
            summary.ok.append(outcome.source_id)
            summary.fragments += outcome.new_fragments
        elif outcome.status == UNCHANGED:
            summary.unchanged.append(outcome.source_id)
        else:
            summary.failed.append((outcome.source_id, outcome.reason or "unknown"))
        summary.uploaded_bytes += outcome.uploaded_bytes
        if on_done:
            on_done(outcome)

    workers = max(1, min(runtime.settings.capture_concurrency, len(ids)))
    with ThreadPoolExecutor(workers, thread_name_prefix="capture") as pool:
        for outcome in pool.map(lambda sid: capture(runtime, sid), ids):
            account(outcome)
    return summary
