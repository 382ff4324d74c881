"""The capture pipeline: fetch a source, store the bytes everywhere, record it, split it.

Data flows one way: source → capture → stored replicas → fragments.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import select

from fragments.models import APPROVED
from fragments.split import CaptureInfo, split_capture
from fragments.store import save_fragments
from mirror.fetch import FetchResult
from mirror.models import Capture, Source
from samizdat.db import utcnow
from samizdat.errors import FetchError, InvalidURLError, StorageError
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

HTML_TYPES = {"text/html", "application/xhtml+xml", ""}


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


@dataclass
class RunSummary:
    """What one mirror run did, source by source."""

    ok: list[int] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    fragments: int = 0

    @property
    def attempted(self) -> int:
        """How many sources the run tried."""
        return len(self.ok) + len(self.failed)


def _store_everywhere(runtime: Runtime, body: bytes) -> tuple[dict[str, str], list[str]]:
    """Put ``body`` in every back-end; return locators by back-end and the failures."""
    locators: dict[str, str] = {}
    errors: list[str] = []
    # The local store goes first: it is the spool that later back-ends can be re-filled from.
    for name, store in runtime.stores.items():
        try:
            locators[name] = store.put(body).locator
        except StorageError as exc:
            log.warning("storing in %s failed: %s", name, exc)
            errors.append(f"{name}: {exc}")
            if name == "local":
                raise
    return locators, errors


def _outcome(capture: Capture, new_fragments: int) -> CaptureOutcome:
    return CaptureOutcome(
        capture.id,
        capture.source_id,
        capture.url,
        capture.status,
        capture.error_reason,
        capture.error_message,
        new_fragments,
    )


def capture_source(runtime: Runtime, source_id: int) -> CaptureOutcome:
    """Fetch one source and record the capture (ok or failed) in its own transaction."""
    with runtime.Session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise InvalidURLError(f"no source with id {source_id}")
        url = source.url
        fetched_at = utcnow()
        try:
            result = runtime.fetcher.fetch(url)
        except FetchError as exc:
            return _record_failure(
                session, source, url, fetched_at, exc.reason, str(exc), exc.status, exc.final_url
            )
        try:
            locators, errors = _store_everywhere(runtime, result.body)
        except StorageError as exc:
            return _record_failure(
                session, source, url, fetched_at, "storage", str(exc), result.status, result.final_url
            )
        capture = Capture(
            source_id=source.id,
            status="ok",
            url=url,
            final_url=result.final_url,
            http_status=result.status,
            content_type=result.content_type or None,
            sha256=locators["local"],
            size=len(result.body),
            local_key=locators["local"],
            s3_key=locators.get("s3"),
            cid=locators.get("ipfs"),
            error_message="; ".join(errors) or None,
            fetched_at=fetched_at,
        )
        session.add(capture)
        session.flush()
        new_fragments = _split(session, capture, result)
        session.commit()
        log.info("captured %s (%d bytes, %d new fragments)", url, len(result.body), new_fragments)
        return _outcome(capture, new_fragments)


def _split(session, capture: Capture, result: FetchResult) -> int:
    """Split an HTML capture into fragments; other content types are kept but not split."""
    if result.content_type not in HTML_TYPES:
        return 0
    info = CaptureInfo(
        capture_id=capture.id,
        source_url=capture.url,
        sha256=capture.sha256,
        cid=capture.cid,
        fetched_at=capture.fetched_at,
    )
    drafts = split_capture(result.body, info, charset=result.charset)
    if drafts and drafts[0].capture.title:
        capture.title = drafts[0].capture.title
    # Curation arrives with the fragments issue; until then fragments are served as split.
    return save_fragments(session, drafts, status=APPROVED)


def _record_failure(
    session,
    source: Source,
    url: str,
    fetched_at,
    reason: str,
    message: str,
    http_status: int | None = None,
    final_url: str | None = None,
) -> CaptureOutcome:
    """Record a failed attempt with its reason; nothing is stored."""
    capture = Capture(
        source_id=source.id,
        status="failed",
        url=url,
        final_url=final_url,
        http_status=http_status,
        error_reason=reason,
        error_message=message[:2000],
        fetched_at=fetched_at,
    )
    session.add(capture)
    session.commit()
    log.warning("capture of %s failed (%s): %s", url, reason, message)
    return _outcome(capture, 0)


def run_sources(
    runtime: Runtime,
    source_ids: Iterable[int] | None = None,
    on_done: Callable[[CaptureOutcome], None] | None = None,
) -> RunSummary:
    """Capture the given sources (all active ones when None), going on past failures."""
    if source_ids is None:
        with runtime.Session() as session:
            source_ids = list(
                session.scalars(select(Source.id).where(Source.active.is_(True)).order_by(Source.id))
            )
    summary = RunSummary()
    for source_id in source_ids:
        outcome = capture_source(runtime, source_id)
        if outcome.status == "ok":
            summary.ok.append(source_id)
            summary.fragments += outcome.new_fragments
        else:
            summary.failed.append((source_id, outcome.reason or "unknown"))
        if on_done:
            on_done(outcome)
    return summary
