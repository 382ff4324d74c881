"""The archive at a glance, for the front page: pages per country and category, captures per
day, and the pages that changed this week. Every figure is a GROUP BY or COUNT in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session, aliased

from archive.listing import (
    STORED,
    UNCHANGED,
    FacetValue,
    ListingQuery,
    PageRow,
    facet_counts,
    list_pages,
    pages_by_id,
)
from mirror.models import Capture, Source
from samizdat.db import utcnow

DAYS_SHOWN = 30
WEEK_DAYS = 7
LATEST_SHOWN = 8
CHANGED_SHOWN = 10
CHART_BARS = 12


@dataclass(frozen=True)
class Overview:
    """Everything the front page shows about the archive."""

    pages: int
    latest: list[PageRow]
    by_country: list[FacetValue]
    by_category: list[FacetValue]
    captures_per_day: list[tuple[date, int]]
    changes_per_day: list[tuple[date, int]]
    changed_pages: int
    changed: list[tuple[PageRow, datetime]]


def _day(session: Session, column):
    """``column``'s UTC calendar day as 'YYYY-MM-DD' text, on either database."""
    if session.get_bind().dialect.name == "postgresql":
        # timestamptz → the day in UTC, whatever the connection's time zone is.
        # Literals, not bound parameters: GROUP BY must repeat the SELECT's expression exactly.
        utc, pattern = literal_column("'UTC'"), literal_column("'YYYY-MM-DD'")
        return func.to_char(func.timezone(utc, column), pattern)
    return func.date(column)  # SQLite keeps UTC timestamps as 'YYYY-MM-DD HH:MM:SS…' text


def _per_day(session: Session, statement, day, first: date, days: int) -> list[tuple[date, int]]:
    """Counts grouped by ``day`` over ``days`` days from ``first``, missing days as zero."""
    counts = {text: n for text, n in session.execute(statement.group_by(day))}
    span = [first + timedelta(days=n) for n in range(days)]
    return [(d, counts.get(d.isoformat(), 0)) for d in span]


def overview(session: Session, now: datetime | None = None) -> Overview:
    """The front page's figures as of ``now`` (the current time by default)."""
    now = now or utcnow()
    today = now.date()
    everything = ListingQuery()
    latest = list_pages(session, ListingQuery(per_page=LATEST_SHOWN))

    month_start = today - timedelta(days=DAYS_SHOWN - 1)
    day = _day(session, Capture.fetched_at)
    captures = (
        select(day, func.count())
        .join(Source, Source.id == Capture.source_id)
        .where(
            Capture.status.in_((STORED, UNCHANGED)),
            Capture.fetched_at >= datetime.combine(month_start, datetime.min.time(), now.tzinfo),
            Source.deleted_at.is_(None),
        )
    )

    # A page changed when a new stored capture (new bytes) follows an earlier stored one.
    week_start = today - timedelta(days=WEEK_DAYS - 1)
    earlier = aliased(Capture)
    changes = (
        Capture.status == STORED,
        Capture.fetched_at >= datetime.combine(week_start, datetime.min.time(), now.tzinfo),
        select(earlier.id)
        .where(
            earlier.source_id == Capture.source_id,
            earlier.status == STORED,
            earlier.id < Capture.id,
        )
        .exists(),
        Source.deleted_at.is_(None),
    )
    changed_select = select(day, func.count()).join(Source, Source.id == Capture.source_id)
    last_change = func.max(Capture.fetched_at).label("changed_at")
    changed_sources = (
        select(Capture.source_id, last_change)
        .join(Source, Source.id == Capture.source_id)
        .where(*changes)
        .group_by(Capture.source_id)
    )
    changed_total = session.scalar(select(func.count()).select_from(changed_sources.subquery()))
    recent = session.execute(
        changed_sources.order_by(last_change.desc(), Capture.source_id.desc()).limit(CHANGED_SHOWN)
    ).all()
    rows = pages_by_id(session, [source_id for source_id, _ in recent])

    return Overview(
        pages=latest.total,
        latest=latest.rows,
        by_country=facet_counts(session, everything, "country")[:CHART_BARS],
        by_category=facet_counts(session, everything, "category")[:CHART_BARS],
        captures_per_day=_per_day(session, captures, day, month_start, DAYS_SHOWN),
        changes_per_day=_per_day(
            session, changed_select.where(*changes), day, week_start, WEEK_DAYS
        ),
        changed_pages=changed_total or 0,
        changed=[(rows[sid], when) for sid, when in recent if sid in rows],
    )
