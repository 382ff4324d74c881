"""Adding and choosing sources: the pages archivists want kept alive."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from config.settings import Settings
from mirror.models import Capture, Job, Source
from mirror.urls import normalize_url
from samizdat.db import utcnow
from samizdat.errors import SamizdatError
from samizdat.text import unstorable_reason


_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhd]?)\s*$")
_UNIT_MINUTES = {"": 1, "m": 1, "h": 60, "d": 1440}


def parse_interval(text: str) -> int:
    """'90m', '6h', '1d' or a bare number of minutes → minutes; SamizdatError otherwise."""
    match = _INTERVAL.match(text or "")
    if not match or int(match.group(1)) == 0:
        raise SamizdatError(f"expected e.g. 30m, 6h or 1d, got {text!r}")
    return int(match.group(1)) * _UNIT_MINUTES[match.group(2)]


def interval_or_default(every: str | None, settings: Settings) -> int:
    """Minutes for an ``every`` value such as "6h", or the configured default when none is given."""
    return parse_interval(every) if every else settings.default_interval_minutes


def clean_country(country: str | None) -> str | None:
    """A two-letter upper-case code, None for none; SamizdatError for anything else."""
    if country is None or not country.strip():
        return None
    country = country.strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise SamizdatError(f"country must be a two-letter code, got {country!r}")
    return country


MAX_COLLECTION_LENGTH = 100  # sources.collection is VARCHAR(100)


def clean_collection(collection: str | None) -> str | None:
    """A collection name of at most 100 characters, None for none; SamizdatError otherwise."""
    if collection is None or not collection.strip():
        return None
    collection = collection.strip()
    if len(collection) > MAX_COLLECTION_LENGTH:
        raise SamizdatError(f"collection must be at most {MAX_COLLECTION_LENGTH} characters")
    reason = unstorable_reason(collection)  # e.g. an undecodable command-line argument
    if reason:
        raise SamizdatError(f"collection {reason}")
    return collection


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
    country = clean_country(country)
    collection = clean_collection(collection)
    if interval_minutes <= 0:
        raise SamizdatError("interval must be positive")
    existing = session.scalar(select(Source).where(Source.url == normalized))
    if existing is not None and existing.deleted_at is not None:
        # Adding a deleted page again brings it back (its old captures were kept) as if new.
        existing.deleted_at = None
        existing.active = True
        existing.interval_minutes = interval_minutes
        existing.country = country
        existing.collection = collection
        session.flush()
        return AddResult(existing, created=True)
    if existing is not None:
        return AddResult(existing, created=False)
    source = Source(
        url=normalized,
        interval_minutes=interval_minutes,
        country=country,
        collection=collection,
        active=True,
    )
    session.add(source)
    session.flush()
    return AddResult(source, created=True)


_UNSET = object()


def update_source(
    session: Session,
    source: Source,
    *,
    country: str | None | object = _UNSET,
    collection: str | None | object = _UNSET,
    interval_minutes: int | object = _UNSET,
    active: bool | object = _UNSET,
) -> Source:
    """Change the given fields of a source (others stay); validates all before writing any.

    The caller commits.
    """
    changes: dict[str, object] = {}
    if country is not _UNSET:
        changes["country"] = clean_country(country)  # type: ignore[arg-type]
    if collection is not _UNSET:
        changes["collection"] = clean_collection(collection)  # type: ignore[arg-type]
    if interval_minutes is not _UNSET:
        if not isinstance(interval_minutes, int) or interval_minutes <= 0:
            raise SamizdatError("interval must be positive")
        changes["interval_minutes"] = interval_minutes
    if active is not _UNSET:
        if not isinstance(active, bool):
            raise SamizdatError("active must be true or false")
        changes["active"] = active
    for name, value in changes.items():
        setattr(source, name, value)
    session.flush()
    return source


def delete_source(session: Session, source: Source) -> Source:
    """Hide a source from listings and from mirroring; its captures and fragments are kept.

    The caller commits.
    """
    source.deleted_at = utcnow()
    session.flush()
    return source


def due_sources(session: Session, now: datetime | None = None) -> list[Source]:
    """Active sources never attempted, or whose last attempt is older than their interval.

    Sources with a job queued or running are left out, so a slow capture is never doubled.
    """
    now = now or utcnow()
    last = (
        select(Capture.source_id, func.max(Capture.fetched_at).label("last_at"))
        .group_by(Capture.source_id)
        .subquery()
    )
    rows = session.execute(
        select(Source, last.c.last_at)
        .outerjoin(last, last.c.source_id == Source.id)
        .where(Source.active.is_(True), Source.deleted_at.is_(None))
        # A source with a job already queued or running is not due again.
        .where(~select(Job.id).where(Job.source_id == Source.id, Job.state.in_(("queued", "running"))).exists())
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
