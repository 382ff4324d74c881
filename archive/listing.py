"""The reader's listing of mirrored pages: filters, facets, sorting and pages, all counted in SQL.

A page is *mirrored* when its source is live (not deleted) and has at least one stored capture
("ok"); "unchanged" captures count as captures too (a check that found the same page). Only the
rows of the page asked for ever leave the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime

from flask_babel import gettext, lazy_gettext
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, aliased

from mirror.models import Capture, Source
from mirror.sources import clean_collection, clean_country
from samizdat.errors import SamizdatError

STORED, UNCHANGED = "ok", "unchanged"
# Labels translated when shown (lazily: this table is built at import, outside any request).
SORTS = {
    "newest": lazy_gettext("Newest capture first"),
    "oldest": lazy_gettext("Oldest capture first"),
    "title": lazy_gettext("Title (A–Z)"),
}
DEFAULT_SORT = "newest"
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_QUERY_CHARS = 1000
MAX_CATEGORY_CHARS = 32  # sources.category_code is VARCHAR(32)
FACET_LIMIT = 50  # values shown per facet, most pages first
FACETS = ("country", "collection", "category")


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class ListingError(SamizdatError):
    """A listing filter that cannot be applied (shown to the reader as a 400 with the reason)."""


@dataclass(frozen=True)
class ListingQuery:
    """What a reader asked the listing for; every field already checked."""

    q: str | None = None
    country: str | None = None
    collection: str | None = None
    category: str | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE

    def args(self, **changes) -> dict[str, object]:
        """Query-string arguments for this listing with ``changes``, defaults left out.

        Changing a filter or the sort goes back to the first page, as the old page number
        means nothing in the new list.
        """
        if changes.keys() - {"page"}:
            changes.setdefault("page", 1)
        query = replace(self, **changes)
        args = {
            "q": query.q, "country": query.country, "collection": query.collection,
            "category": query.category,
            "sort": None if query.sort == DEFAULT_SORT else query.sort,
            "page": None if query.page == 1 else query.page,
            "per_page": None if query.per_page == DEFAULT_PER_PAGE else query.per_page,
        }
        return {name: value for name, value in args.items() if value is not None}

    @property
    def filtered(self) -> bool:
        """Whether any filter (or a search) narrows the listing."""
        return any((self.q, self.country, self.collection, self.category))


def listing_query(
    q: str | None = None,
    country: str | None = None,
    collection: str | None = None,
    category: str | None = None,
    sort: str | None = None,
    page: int = 1,
    per_page: int = DEFAULT_PER_PAGE,
) -> ListingQuery:
    """A checked :class:`ListingQuery` from raw text; ListingError with one clear reason."""
    # Control characters and runs of spaces count as one space; nothing is left of a query of
    # control characters alone, which then lists everything.
    q = " ".join(_CONTROL.sub(" ", q or "").split()) or None
    if q and len(q) > MAX_QUERY_CHARS:
        raise ListingError(gettext("search text must be at most %(limit)s characters",
                                   limit=f"{MAX_QUERY_CHARS:,}"))
    try:
        country = clean_country(country)
        collection = clean_collection(collection)
    except SamizdatError as exc:
        raise ListingError(str(exc)) from None
    category = (category or "").strip() or None
    if category and len(category) > MAX_CATEGORY_CHARS:
        raise ListingError(gettext("category must be a code of at most %(limit)d characters",
                                   limit=MAX_CATEGORY_CHARS))
    sort = (sort or "").strip() or DEFAULT_SORT
    if sort not in SORTS:
        raise ListingError(gettext("sort must be one of %(sorts)s", sorts=", ".join(SORTS)))
    return ListingQuery(q, country, collection, category, sort, page, per_page)


@dataclass(frozen=True)
class PageRow:
    """One mirrored page in the listing."""

    source_id: int
    url: str
    title: str | None
    country: str | None
    collection: str | None
    category_code: str | None
    category_description: str | None
    last_captured_at: datetime
    captures: int
    latest_capture_id: int


@dataclass(frozen=True)
class ListingPage:
    """One page of the listing and how many mirrored pages match in all."""

    query: ListingQuery
    rows: list[PageRow]
    total: int

    @property
    def pages(self) -> int:
        """How many pages the whole listing has (at least one, even when empty)."""
        return max(1, -(-self.total // self.query.per_page))


@dataclass(frozen=True)
class FacetValue:
    """One value of a facet (a country, collection or category) and its number of pages."""

    value: str
    label: str
    count: int


# Per source: its last successful capture, how many it has, and its newest stored one (ids grow
# with time). One GROUP BY over captures, served by ix_captures_source_id_status_fetched_at.
_STATS = (
    select(
        Capture.source_id.label("source_id"),
        func.max(Capture.fetched_at).label("last_captured_at"),
        func.count().label("captures"),
        func.max(case((Capture.status == STORED, Capture.id))).label("latest_id"),
    )
    .where(Capture.status.in_((STORED, UNCHANGED)))
    .group_by(Capture.source_id)
    .having(func.max(case((Capture.status == STORED, Capture.id))).is_not(None))
    .subquery("capture_stats")
)
_LATEST = aliased(Capture, name="latest_capture")


def _mirrored(columns, query: ListingQuery, skip: str | None = None) -> Select:
    """``columns`` over mirrored pages matching ``query``'s filters, except the facet ``skip``."""
    statement = (
        select(*columns)
        .select_from(Source)
        .join(_STATS, _STATS.c.source_id == Source.id)
        .join(_LATEST, _LATEST.id == _STATS.c.latest_id)
        .where(Source.deleted_at.is_(None))
    )
    if query.country and skip != "country":
        statement = statement.where(Source.country == query.country)
    if query.collection and skip != "collection":
        statement = statement.where(Source.collection == query.collection)
    if query.category and skip != "category":
        statement = statement.where(Source.category_code == query.category)
    return statement


_ROW_COLUMNS = (
    Source.id, Source.url, _LATEST.title, Source.country, Source.collection, Source.category_code,
    Source.category_description, _STATS.c.last_captured_at, _STATS.c.captures, _STATS.c.latest_id,
)


def _order(sort: str):
    if sort == "oldest":
        return (_STATS.c.last_captured_at.asc(), Source.id.asc())
    if sort == "title":
        return (func.lower(func.coalesce(_LATEST.title, Source.url)).asc(), Source.id.asc())
    return (_STATS.c.last_captured_at.desc(), Source.id.desc())


def list_pages(session: Session, query: ListingQuery) -> ListingPage:
    """The mirrored pages matching ``query``: one page of rows, sorted, and the total."""
    total = session.scalar(
        select(func.count()).select_from(_mirrored([Source.id], query).subquery())
    )
    offset = (query.page - 1) * query.per_page
    statement = _mirrored(_ROW_COLUMNS, query).order_by(*_order(query.sort))
    rows = session.execute(statement.offset(offset).limit(query.per_page)).all()
    return ListingPage(query, [PageRow(*row) for row in rows], total or 0)


def pages_by_id(session: Session, source_ids: list[int]) -> dict[int, PageRow]:
    """The listing rows of these sources (those still mirrored), by source id."""
    if not source_ids:
        return {}
    statement = _mirrored(_ROW_COLUMNS, ListingQuery()).where(Source.id.in_(source_ids))
    return {row[0]: PageRow(*row) for row in session.execute(statement)}


def facet_counts(session: Session, query: ListingQuery, facet: str) -> list[FacetValue]:
    """The values of ``facet`` among pages matching the *other* filters, most pages first.

    Counting without the facet's own filter lets a reader switch country (or collection, or
    category) in one click instead of clearing it first.
    """
    if facet == "country":
        columns = (Source.country,)
    elif facet == "collection":
        columns = (Source.collection,)
    elif facet == "category":
        columns = (Source.category_code, func.max(Source.category_description))
    else:
        raise ValueError(f"unknown facet {facet!r}")
    key = columns[0]
    count = func.count().label("pages")
    statement = (
        _mirrored([*columns, count], query, skip=facet)
        .where(key.is_not(None))
        .group_by(key)
        .order_by(count.desc(), key.asc())
        .limit(FACET_LIMIT)
    )
    values = []
    for row in session.execute(statement):
        label = row[0] if facet != "category" or not row[1] else f"{row[0]} — {row[1]}"
        values.append(FacetValue(row[0], label, row[-1]))
    return values

