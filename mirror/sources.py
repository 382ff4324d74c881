"""Adding and choosing sources: the pages archivists want kept alive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from mirror.models import Capture, Source
from mirror.urls import normalize_url
from samizdat.db import utcnow
from samizdat.errors import SamizdatError


@dataclass(frozen=True)
class AddResult:
    """The stored source and whether this call created it."""

    source: Source
    created: bool


def add_source(
    session: Session,
    url: str,
    interval_minutes: int,
    country: str | None = None,
    collection: str | None = None,
) -> AddResult:
    """Validate and store a source; an already known URL (after normalisation) is returned as is.

    Raises InvalidURLError before anything is written. The caller commits.
    """
    normalized = normalize_url(url)
    if country is not None:
        country = country.strip().upper()
        if len(country) != 2 or not country.isalpha():
            raise SamizdatError(f"country must be a two-letter code, got {country!r}")
    if interval_minutes <= 0:
        raise SamizdatError("interval must be positive")
    existing = session.scalar(select(Source).where(Source.url == normalized))
    if existing is not None:
        return AddResult(existing, created=False)
    source = Source(
        url=normalized,
        interval_minutes=interval_minutes,
        country=country,
        collection=collection or None,
        active=True,
    )
    session.add(source)
    session.flush()
    return AddResult(source, created=True)


def due_sources(session: Session, now: datetime | None = None) -> list[Source]:
    """Active sources never attempted, or whose last attempt is older than their interval."""
    now = now or utcnow()
    last = (
        select(Capture.source_id, func.max(Capture.fetched_at).label("last_at"))
        .group_by(Capture.source_id)
        .subquery()
    )
    rows = session.execute(
        select(Source, last.c.last_at)
        .outerjoin(last, last.c.source_id == Source.id)
        .where(Source.active.is_(True))
        .order_by(Source.id)
    ).all()
    due = []
    for source, last_at in rows:
        if last_at is None:
            due.append(source)
            continue
        if last_at + timedelta(minutes=source.interval_minutes) <= now:
            due.append(source)
    return due
