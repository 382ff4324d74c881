"""Adding and choosing sources: the pages archivists want kept alive."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from accounts.audit import Actor, record, snapshot
from accounts.audit import changes as audit_changes
from config.settings import Settings
from mirror.models import Capture, Job, Source
from mirror.urls import normalize_url
from samizdat.db import MAX_DB_INT, utcnow
from samizdat.errors import SamizdatError
from samizdat.text import unstorable_reason

log = logging.getLogger(__name__)

# The one place capture intervals are bounded: every way in (API, pages, CLI, import) goes
# through check_interval, and due_sources clamps rows stored before the bounds existed.
MIN_INTERVAL_MINUTES = 1
MAX_INTERVAL_MINUTES = 365 * 24 * 60

_INTERVAL = re.compile(r"^\s*([0-9]+)\s*([mhd]?)\s*$")
_UNIT_MINUTES = {"": 1, "m": 1, "h": 60, "d": 1440}
# More digits than this is out of range whatever the unit; checked before int() so that a
# thousand-digit value costs nothing.
_MAX_DIGITS = len(str(MAX_INTERVAL_MINUTES))


def check_interval(minutes: object) -> int:
    """``minutes`` if it is a whole number of minutes within the bounds; SamizdatError otherwise."""
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise SamizdatError(f"interval must be a whole number of minutes, got {minutes!r}")
    if not MIN_INTERVAL_MINUTES <= minutes <= MAX_INTERVAL_MINUTES:
        raise SamizdatError(
            f"interval must be between {MIN_INTERVAL_MINUTES} minute and "
            f"{MAX_INTERVAL_MINUTES // 1440} days, got {minutes} minutes"
        )
    return minutes


def parse_interval(text: object) -> int:
    """'90m', '6h', '1d' or a bare number of minutes → minutes within bounds; SamizdatError otherwise."""
    match = _INTERVAL.match(text) if isinstance(text, str) else None
    digits = match.group(1).lstrip("0") if match else ""
    if not digits:  # not an interval at all, or zero
        raise SamizdatError(f"expected e.g. 30m, 6h or 1d, got {text!r:.60}")
    if len(digits) > _MAX_DIGITS:
        raise SamizdatError(f"interval must be at most {MAX_INTERVAL_MINUTES // 1440} days")
    return check_interval(int(digits) * _UNIT_MINUTES[match.group(2)])


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


# How a source is captured. "auto" fetches over HTTP and captures again in the browser when the
# result looks script-built (browser/needed.py); "http" never uses the browser; "browser" always.
CAPTURE_MODES = ("auto", "http", "browser")
DEFAULT_CAPTURE_MODE = "auto"


def clean_capture_mode(mode: object) -> str:
    """``mode`` if it is one of CAPTURE_MODES, exactly (lower case); SamizdatError otherwise.

    The one check of a capture mode: the API, the pages, the CLI and the import all call it.
    """
    if not isinstance(mode, str) or mode not in CAPTURE_MODES:
        if isinstance(mode, str):
            shown = repr(mode)
        else:
            shown = "none" if mode is None else type(mode).__name__
        raise SamizdatError(
            f"capture mode must be one of {', '.join(CAPTURE_MODES)}, got {shown:.40}"
        )
    return mode


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
    actor: Actor | None = None,
    capture_mode: object = DEFAULT_CAPTURE_MODE,
) -> AddResult:
    """Validate and store a source; an already known URL (after normalisation) is returned as is.

    Raises InvalidURLError before anything is written. With ``actor``, an addition is recorded
    in the audit log. The caller commits.
    """
    normalized = normalize_url(url)
    country = clean_country(country)
    collection = clean_collection(collection)
    capture_mode = clean_capture_mode(capture_mode)
    check_interval(interval_minutes)
    existing = session.scalar(select(Source).where(Source.url == normalized))
    if existing is not None and existing.deleted_at is not None:
        # Adding a deleted page again brings it back (its old captures were kept) as if new.
        existing.deleted_at = None
        existing.active = True
        existing.interval_minutes = interval_minutes
        existing.country = country
        existing.collection = collection
        existing.capture_mode = capture_mode
        session.flush()
        _audit_added(session, actor, existing, restored=True)
        return AddResult(existing, created=True)
    if existing is not None:
        return AddResult(existing, created=False)
    source = Source(
        url=normalized,
        interval_minutes=interval_minutes,
        country=country,
        collection=collection,
        capture_mode=capture_mode,
        active=True,
    )
    session.add(source)
    session.flush()
    _audit_added(session, actor, source)
    return AddResult(source, created=True)


def _audit_added(session: Session, actor: Actor | None, source: Source, restored: bool = False):
    """Record an added (or restored) source when an actor is known."""
    if actor is not None:
        detail = snapshot(source, _AUDITED_FIELDS)
        record(session, actor, "source.add", "source", source.id,
               {"url": source.url, **detail, **({"restored": True} if restored else {})})


_UNSET = object()
# What an edit of a source records, old and new.
_AUDITED_FIELDS = ("country", "collection", "interval_minutes", "capture_mode", "active")


def update_source(
    session: Session,
    source: Source,
    *,
    country: str | None | object = _UNSET,
    collection: str | None | object = _UNSET,
    interval_minutes: int | object = _UNSET,
    active: bool | object = _UNSET,
    capture_mode: str | object = _UNSET,
    actor: Actor | None = None,
) -> Source:
    """Change the given fields of a source (others stay); validates all before writing any.

    With ``actor``, a change is recorded (``source.pause``/``resume`` when only the state
    changed, else ``source.edit`` with old and new values). The caller commits.
    """
    changes: dict[str, object] = {}
    if country is not _UNSET:
        changes["country"] = clean_country(country)  # type: ignore[arg-type]
    if collection is not _UNSET:
        changes["collection"] = clean_collection(collection)  # type: ignore[arg-type]
    if interval_minutes is not _UNSET:
        changes["interval_minutes"] = check_interval(interval_minutes)
    if capture_mode is not _UNSET:
        changes["capture_mode"] = clean_capture_mode(capture_mode)
    if active is not _UNSET:
        if not isinstance(active, bool):
            raise SamizdatError("active must be true or false")
        changes["active"] = active
    before = snapshot(source, _AUDITED_FIELDS)
    for name, value in changes.items():
        setattr(source, name, value)
    session.flush()
    diff = audit_changes(before, source)
    if actor is not None and diff:
        action = "source.edit"
        if set(diff) == {"active"}:
            action = "source.resume" if source.active else "source.pause"
        record(session, actor, action, "source", source.id, {"url": source.url, **diff})
    return source


def delete_source(session: Session, source: Source, actor: Actor | None = None) -> Source:
    """Hide a source from listings and from mirroring; its captures and fragments are kept.

    With ``actor``, the deletion is recorded. The caller commits.
    """
    source.deleted_at = utcnow()
    session.flush()
    if actor is not None:
        record(session, actor, "source.delete", "source", source.id, {"url": source.url})
    return source


SOURCE_STATES = ("active", "paused")
BULK_ACTIONS = ("pause", "resume", "delete", "mode")
# Deleting hides sources from mirroring: every interface asks before doing it to many at once.
DESTRUCTIVE_ACTIONS = frozenset({"delete"})
MAX_QUERY_CHARS = 200
# One bulk request names at most this many sources (SQLite binds each as a parameter).
MAX_BULK_IDS = 1000


@dataclass(frozen=True)
class SourceFilter:
    """Which live sources to list or change; every criterion given must hold.

    Build one with :func:`source_filter`, which validates what a form, a JSON body or the
    command line sent.
    """

    ids: tuple[int, ...] = ()
    country: str | None = None
    collection: str | None = None
    q: str | None = None  # part of the URL, any case
    state: str | None = None  # "active" or "paused"

    @property
    def is_empty(self) -> bool:
        """True when nothing narrows the selection (it would be every source)."""
        return not (self.ids or self.country or self.collection or self.q or self.state)


def _source_id(value: object) -> int:
    """A source id as JSON, a form or the command line gives it: a whole number from 1 to
    MAX_DB_INT (an int, a whole float, or ASCII digits); SamizdatError for anything else."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        digits = value.strip()
        # Past ten digits it is out of range anyway; int() of thousands of digits is refused.
        value = int(digits) if len(digits) <= len(str(MAX_DB_INT)) else MAX_DB_INT + 1
    elif isinstance(value, float) and value.is_integer():  # JSON's 3.0 (never inf or nan)
        value = int(value)
    # bool is an int in Python, but `true` is no source id.
    if isinstance(value, bool) or not isinstance(value, int):
        raise SamizdatError("source ids must be whole numbers")
    if value <= 0:
        raise SamizdatError("source ids must be positive")
    if value > MAX_DB_INT:
        # Not "no source with id": the database cannot even be asked about such an id.
        raise SamizdatError(f"source ids are at most {MAX_DB_INT}")
    return value


def source_filter(
    ids: Iterable[int | str] = (),
    country: str | None = None,
    collection: str | None = None,
    q: str | None = None,
    state: str | None = None,
) -> SourceFilter:
    """Validate raw criteria into a SourceFilter; SamizdatError with one message otherwise."""
    ids = list(ids)
    if len(ids) > MAX_BULK_IDS:
        raise SamizdatError(f"at most {MAX_BULK_IDS} source ids at a time")
    clean_ids = tuple(sorted({_source_id(i) for i in ids}))
    q = (q or "").strip() or None
    if q is not None and len(q) > MAX_QUERY_CHARS:
        raise SamizdatError(f"search text must be at most {MAX_QUERY_CHARS} characters")
    state = (state or "").strip() or None
    if state is not None and state not in SOURCE_STATES:
        raise SamizdatError(f"state must be one of {', '.join(SOURCE_STATES)}")
    return SourceFilter(clean_ids, clean_country(country), clean_collection(collection), q, state)


def filtered_sources(flt: SourceFilter) -> Select:
    """The query of live sources matching ``flt``, in id order."""
    query = select(Source).where(Source.deleted_at.is_(None))
    if flt.ids:
        query = query.where(Source.id.in_(flt.ids))
    if flt.country:
        query = query.where(Source.country == flt.country)
    if flt.collection:
        query = query.where(Source.collection == flt.collection)
    if flt.q:
        # autoescape: a % or _ typed by the archivist is a character, not a wildcard.
        query = query.where(func.lower(Source.url).contains(flt.q.lower(), autoescape=True))
    if flt.state:
        query = query.where(Source.active.is_(flt.state == "active"))
    return query.order_by(Source.id)


class ConfirmationNeeded(SamizdatError):
    """A destructive bulk action was asked for without confirming it; nothing was changed."""

    def __init__(self, action: str, matched: list[int]):
        noun = "source" if len(matched) == 1 else "sources"
        super().__init__(f"{action} {len(matched)} {noun}? Confirm to go ahead")
        self.action = action
        self.matched = matched


@dataclass(frozen=True)
class BulkResult:
    """What a bulk action did: the live sources it selected and how many it changed."""

    action: str
    matched: list[int]
    changed: int


def bulk_change(
    session: Session,
    action: str,
    flt: SourceFilter,
    confirmed: bool = False,
    actor: Actor | None = None,
    capture_mode: object = None,
) -> BulkResult:
    """Pause, resume, delete or set the ``capture_mode`` of (action ``mode``) every live source
    ``flt`` selects; the caller commits.

    The CLI, the API and the page all come here. An empty filter is refused (it is never "all"
    by accident), as is an id that is unknown or deleted (then nothing changes). A destructive
    action raises ConfirmationNeeded, writing nothing, unless ``confirmed``. With ``actor``, one
    entry records the action and the sources it changed.
    """
    if action not in BULK_ACTIONS:
        raise SamizdatError(f"action must be one of {', '.join(BULK_ACTIONS)}")
    if action == "mode":
        capture_mode = clean_capture_mode(capture_mode)
    elif capture_mode is not None:
        raise SamizdatError("a capture mode goes with the action mode")
    if flt.is_empty:
        raise SamizdatError("choose sources: ids, a collection, a country, URL text or a state")
    if flt.ids:
        live = set(
            session.scalars(
                select(Source.id).where(Source.id.in_(flt.ids), Source.deleted_at.is_(None))
            )
        )
        missing = [i for i in flt.ids if i not in live]
        if missing:
            raise SamizdatError(f"no source with id {', '.join(map(str, missing))}")
    sources = list(session.scalars(filtered_sources(flt)))
    matched = [s.id for s in sources]
    if action in DESTRUCTIVE_ACTIONS and not confirmed and matched:
        raise ConfirmationNeeded(action, matched)
    changed: list[int] = []
    now = utcnow()
    for source in sources:
        if action == "delete":
            source.deleted_at = now
            changed.append(source.id)
        elif action == "mode":
            if source.capture_mode != capture_mode:
                source.capture_mode = capture_mode
                changed.append(source.id)
        elif source.active != (action == "resume"):
            source.active = action == "resume"
            changed.append(source.id)
    session.flush()
    if actor is not None and changed:
        record(session, actor, f"source.{action}", "source",
               changed[0] if len(changed) == 1 else None,
               {"ids": changed, "count": len(changed), "matched": len(matched),
                **({"capture_mode": capture_mode} if action == "mode" else {})})
    return BulkResult(action, matched, len(changed))


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
        # One bad row (an absurd interval stored before the bounds, a corrupt date) is logged
        # and left out; it must never stop the tick for every other source.
        try:
            if last_at is None or _next_due(last_at, source.interval_minutes) <= now:
                due.append(source)
        except (OverflowError, TypeError, ValueError):
            log.exception("source %s: cannot tell when it is due; left out of this tick", source.id)
    return due


def _next_due(last_at: datetime, interval_minutes: int) -> datetime:
    """When a source last attempted at ``last_at`` is due again, its interval clamped to the bounds."""
    minutes = min(max(interval_minutes, MIN_INTERVAL_MINUTES), MAX_INTERVAL_MINUTES)
    return last_at + timedelta(minutes=minutes)
