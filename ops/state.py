"""What the archive is doing, read from the database and the public directory: for /metrics and doctor.

Everything here comes from shared state (the database, the published files), never from one
process's memory, so every web worker and every machine reports the same figures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select

from samizdat.runtime import Runtime

# Job waits (queued → started) are taken from this many most recent jobs at most, over this window:
# bounded work on the primary key however long the jobs table grows.
RECENT_JOBS = 1000
RECENT_WINDOW = timedelta(hours=1)


@dataclass
class ArchiveState:
    """One reading of the archive's operational state."""

    now: datetime
    captures: dict[str, int] = field(default_factory=dict)  # by outcome: ok, unchanged, failed
    replicas: dict[tuple[str, str], int] = field(default_factory=dict)  # (backend, state) → count
    oldest_unstored: dict[str, datetime] = field(default_factory=dict)  # backend → created_at
    processing_backlog: int = 0
    oldest_unprocessed: datetime | None = None
    fragments: dict[str, int] = field(default_factory=dict)  # by status
    jobs: dict[str, int] = field(default_factory=dict)  # by state
    oldest_queued: datetime | None = None
    stale_running: int = 0  # running jobs whose heartbeat is older than the lease
    job_waits: list[float] = field(default_factory=list)  # seconds, jobs started in the window
    sources_active: int = 0
    leader: bool = False
    packs_published_at: datetime | None = None
    static_exported_at: datetime | None = None

    def age(self, when: datetime | None) -> float | None:
        """Seconds from ``when`` to this reading (None stays None)."""
        return None if when is None else max(0.0, (self.now - when).total_seconds())

    def replica_backlog(self, backend: str) -> int:
        """Replicas of ``backend`` not stored yet (pending or failed)."""
        return sum(n for (b, state), n in self.replicas.items() if b == backend and state != "stored")


def _aware(value: datetime | None) -> datetime | None:
    """A timezone-aware UTC datetime (SQLite hands some aggregates back naive or as text)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def read_state(runtime: Runtime, now: datetime | None = None) -> ArchiveState:
    """Read every figure in a handful of grouped queries (raises the driver's error when the database is down)."""
    from fragments.models import Fragment
    from mirror.jobs import QUEUED, RUNNING
    from mirror.leader import leader_present
    from mirror.models import Capture, Job, Replica, Source

    state = ArchiveState(now=now or datetime.now(timezone.utc))
    lease = timedelta(seconds=runtime.settings.job_lease_seconds)
    with runtime.Session() as session:
        state.captures = dict(session.execute(select(Capture.status, func.count()).group_by(Capture.status)).all())
        for backend, replica_state, count, oldest in session.execute(
            select(Replica.backend, Replica.state, func.count(), func.min(Replica.created_at))
            .group_by(Replica.backend, Replica.state)
        ):
            state.replicas[(backend, replica_state)] = count
            if replica_state != "stored" and oldest is not None:
                oldest = _aware(oldest)
                if backend not in state.oldest_unstored or oldest < state.oldest_unstored[backend]:
                    state.oldest_unstored[backend] = oldest
        count, oldest = session.execute(
            select(func.count(), func.min(Capture.fetched_at))
            .where(Capture.status == "ok", Capture.processed_at.is_(None))
        ).one()
        state.processing_backlog, state.oldest_unprocessed = count, _aware(oldest)
        state.fragments = dict(session.execute(select(Fragment.status, func.count()).group_by(Fragment.status)).all())
        state.jobs = dict(session.execute(select(Job.state, func.count()).group_by(Job.state)).all())
        state.oldest_queued = _aware(session.scalar(select(func.min(Job.created_at)).where(Job.state == QUEUED)))
        running = session.execute(select(Job.heartbeat_at, Job.started_at).where(Job.state == RUNNING)).all()
        state.stale_running = sum(
            1 for beat, started in running if (_aware(beat or started) or state.now) < state.now - lease
        )
        since = state.now - RECENT_WINDOW
        for created, started in session.execute(
            select(Job.created_at, Job.started_at).order_by(Job.id.desc()).limit(RECENT_JOBS)
        ):
            started = _aware(started)
            if started is not None and started >= since:
                state.job_waits.append(max(0.0, (started - _aware(created)).total_seconds()))
        state.sources_active = session.scalar(
            select(func.count()).select_from(Source).where(Source.active.is_(True), Source.deleted_at.is_(None))
        ) or 0
    state.leader = leader_present(runtime.settings, runtime.engine)
    state.packs_published_at = packs_published_at(runtime)
    state.static_exported_at = static_exported_at(runtime)
    return state


def packs_published_at(runtime: Runtime) -> datetime | None:
    """When the embed packs were last published (their serial is milliseconds since the epoch)."""
    from embed.publish import PUBLISHED_STATE

    try:
        serial = json.loads((runtime.settings.public_path / PUBLISHED_STATE).read_bytes())["serial"]
        return datetime.fromtimestamp(int(serial) / 1000, timezone.utc)
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None


def static_exported_at(runtime: Runtime) -> datetime | None:
    """When the reader archive's static copy was last exported."""
    from archive.static_copy import STATE_FILE

    try:
        exported = json.loads((runtime.settings.public_path / STATE_FILE).read_bytes())["exported_at"]
        return _aware(datetime.fromisoformat(exported))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def quantiles(values: list[float], points: tuple[float, ...]) -> dict[float, float]:
    """Nearest-rank quantiles of ``values`` (empty when there are none)."""
    if not values:
        return {}
    ordered = sorted(values)
    return {q: ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1] for q in points}

