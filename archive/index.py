"""The search index: one document per source, from the text of its latest successful capture.

Fed from mirror's tables without mirror knowing: :func:`index_new_captures` (the scheduler's
periodic task) picks up captures processed since a watermark, :func:`reindex` (``flask archive
reindex``) rebuilds every document. Both are idempotent and commit in batches.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, select, text
from sqlalchemy.orm import Session

from archive.models import SQLITE_FTS_TABLE, SearchDocument
from archive.search import fold
from fragments.extract import extract_main_text, normalize_space
from mirror.models import Capture, CapturePart
from samizdat.db import utcnow
from samizdat.errors import StorageError
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

BATCH_SIZE = 100
# Longer texts are cut: ranking and snippets need no more, and a megabyte page stays cheap.
MAX_TEXT_CHARS = 200_000
MAX_TITLE_CHARS = 1_000
# processed_at is stamped just before its transaction commits, so a capture may become visible
# a little after a later-stamped one; looking back this far behind the watermark catches it.
WATERMARK_OVERLAP = timedelta(minutes=10)
_HTML_TYPES = {"text/html", "application/xhtml+xml"}


@dataclass
class IndexReport:
    """What one indexing run did."""

    indexed: int = 0
    failed: int = 0


@dataclass(frozen=True)
class _Latest:
    """A source's latest successful processed capture, read before any slow work."""

    source_id: int
    capture_id: int
    url: str
    title: str | None
    content_type: str | None
    charset: str | None
    fetched_at: datetime
    page_sha256: str | None
    processed_at: datetime  # the latest processed_at among the source's successful captures


def _successful():
    return and_(Capture.status == "ok", Capture.processed_at.is_not(None))


def _latest_captures(session: Session, source_ids: Iterable[int]) -> list[_Latest]:
    """Each source's latest successful, processed capture (by fetch time), in source order."""
    ids = list(source_ids)
    newest = (
        select(Capture.source_id, func.max(Capture.processed_at).label("processed_at"))
        .where(_successful(), Capture.source_id.in_(ids))
        .group_by(Capture.source_id)
        .subquery()
    )
    rows = session.execute(
        select(Capture, newest.c.processed_at)
        .join(newest, newest.c.source_id == Capture.source_id)
        .where(_successful())
        .order_by(Capture.source_id, Capture.fetched_at.desc(), Capture.id.desc())
    ).all()
    latest: dict[int, _Latest] = {}
    for capture, processed_at in rows:
        if capture.source_id in latest:
            continue
        page = session.scalars(
            select(CapturePart.sha256).where(
                CapturePart.capture_id == capture.id, CapturePart.role == "page"
            )
        ).first()
        latest[capture.source_id] = _Latest(
            capture.source_id, capture.id, capture.url, capture.title, capture.content_type,
            capture.charset, capture.fetched_at, page, processed_at,
        )
    return [latest[i] for i in sorted(latest)]


def document_text(runtime: Runtime, latest: _Latest) -> tuple[str | None, str]:
    """The title and main text of a capture, from its page bytes in the local store."""
    if latest.page_sha256 is None:
        return latest.title, ""
    data = runtime.stores["local"].get(latest.page_sha256)
    content_type = latest.content_type or "text/html"
    if content_type == "text/plain":
        body = data.decode(latest.charset or "utf-8", errors="replace")
        return latest.title, normalize_space(body)
    if content_type not in _HTML_TYPES:
        return latest.title, ""  # PDFs and the like: found by title and address only
    extraction = extract_main_text(data, latest.url, latest.charset)
    return latest.title or extraction.title, extraction.text


def _write(session: Session, latest: _Latest, title: str | None, body: str) -> None:
    """Insert or replace the source's document (and, on SQLite, its FTS5 row)."""
    # Text no database can store (NUL) is only a separator for search.
    title = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", title or "")[:MAX_TITLE_CHARS] or None
    body = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", " ", body)[:MAX_TEXT_CHARS]
    document = session.get(SearchDocument, latest.source_id)
    document = document or SearchDocument(source_id=latest.source_id)
    document.capture_id = latest.capture_id
    document.title, document.body, document.url = title, body, latest.url
    document.fetched_at, document.processed_at = latest.fetched_at, latest.processed_at
    document.indexed_at = utcnow()
    session.add(document)
    if session.get_bind().dialect.name == "sqlite":
        # The FTS5 table holds the folded copy; on PostgreSQL the tsvector column is generated.
        fts = SQLITE_FTS_TABLE
        session.execute(text(f"DELETE FROM {fts} WHERE rowid = :id"), {"id": latest.source_id})
        session.execute(
            text(f"INSERT INTO {fts} (rowid, title, body) VALUES (:id, :title, :body)"),
            {"id": latest.source_id, "title": fold(title or ""), "body": fold(body)},
        )


def index_sources(runtime: Runtime, source_ids: Iterable[int]) -> IndexReport:
    """(Re)build the documents of ``source_ids`` from their latest successful captures.

    Reading bytes and extracting text happen outside any transaction; the writes of the batch
    commit together. A capture whose page cannot be read is logged and skipped.
    """
    report = IndexReport()
    with runtime.Session() as session:
        latest = _latest_captures(session, source_ids)
    texts = []
    for item in latest:
        try:
            texts.append((item, *document_text(runtime, item)))
        except (StorageError, OSError) as exc:
            report.failed += 1
            log.warning(
                "search: capture %s of source %s not indexed: %s",
                item.capture_id, item.source_id, exc,
            )
    with runtime.Session() as session:
        for item, title, body in texts:
            _write(session, item, title, body)
        session.commit()
    report.indexed += len(texts)
    return report


def watermark(session: Session) -> datetime | None:
    """The newest capture processing time the index reflects (None when it is empty)."""
    return session.scalar(select(func.max(SearchDocument.processed_at)))


def _due_source_ids(session: Session, limit: int) -> list[int]:
    """Sources with a successful capture processed after their document was built (or with none)."""
    since = watermark(session)
    indexed = exists().where(
        SearchDocument.source_id == Capture.source_id,
        SearchDocument.processed_at >= Capture.processed_at,
    )
    query = select(Capture.source_id, func.min(Capture.processed_at).label("first")).where(
        _successful(), ~indexed
    )
    if since is not None:
        query = query.where(Capture.processed_at >= since - WATERMARK_OVERLAP)
    query = query.group_by(Capture.source_id).order_by("first", Capture.source_id).limit(limit)
    return [row.source_id for row in session.execute(query)]


def index_new_captures(runtime: Runtime, batch_size: int = BATCH_SIZE) -> IndexReport:
    """Index every source with a capture processed since the watermark, a batch at a time."""
    report = IndexReport()
    attempted: set[int] = set()
    while True:
        with runtime.Session() as session:
            due = _due_source_ids(session, batch_size + len(attempted))
        due = [i for i in due if i not in attempted]
        if not due:
            return report
        due = due[:batch_size]
        # A source whose page could not be read stays due: tried once per run, not forever.
        attempted.update(due)
        batch = index_sources(runtime, due)
        report.indexed += batch.indexed
        report.failed += batch.failed


def reindex(
    runtime: Runtime, batch_size: int = BATCH_SIZE, progress: Callable[[int], None] | None = None
) -> IndexReport:
    """Rebuild every document; ``progress`` is told how many sources each batch covered."""
    report = IndexReport()
    with runtime.Session() as session:
        query = select(Capture.source_id).where(_successful()).distinct()
        ids = list(session.scalars(query.order_by(Capture.source_id)))
    for start in range(0, len(ids), batch_size):
        batch = index_sources(runtime, ids[start : start + batch_size])
        report.indexed += batch.indexed
        report.failed += batch.failed
        if progress is not None:
            progress(len(ids[start : start + batch_size]))
    return report


def count_indexable(runtime: Runtime) -> int:
    """How many sources have a successful capture (what a reindex goes through)."""
    with runtime.Session() as session:
        query = select(func.count(func.distinct(Capture.source_id))).where(_successful())
        return session.scalar(query) or 0
