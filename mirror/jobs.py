"""Capture jobs: queued by the web app or the schedule, run by workers or the scheduler process.

The web process never captures by itself: it queues a job, and a process that runs jobs (the
scheduler with ``scheduler_runs_jobs``, any number of `flask worker` processes, `flask mirror run`)
claims it within ``jobs_poll_seconds``. Claiming is one short transaction: on PostgreSQL
``SELECT … FOR UPDATE SKIP LOCKED`` (workers on many machines never wait for each other nor take
the same job), on SQLite an atomic ``UPDATE … WHERE state = 'queued'`` (one machine). The process
running a job holds a lease on it: it renews ``heartbeat_at`` from a background thread, and a
running job whose heartbeat is older than ``job_lease_seconds`` belonged to a process that died;
it is marked interrupted and re-queued.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, or_, select, text, update
from sqlalchemy.orm import Session, aliased

from config.logs import log_context
from config.settings import Settings
from mirror.models import Job, Source
from mirror.pipeline import (
    FAILED,
    OK,
    UNCHANGED,
    CaptureOutcome,
    RunSummary,
    capture_source,
    run_sources,
)
from mirror.sources import due_sources
from samizdat.db import utcnow
from samizdat.errors import SamizdatError
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED, INTERRUPTED = "queued", "running", "succeeded", "interrupted"
# The PostgreSQL channel on which a queued job wakes idle workers (LISTEN/NOTIFY).
JOBS_CHANNEL = "samizdat_jobs"
ACTIVE_STATES = (QUEUED, RUNNING)
_STATE_FOR = {OK: SUCCEEDED, UNCHANGED: "unchanged", FAILED: "failed"}
# Every state a job can be in, in the order of its life (pages offer them as a filter).
JOB_STATES = (QUEUED, RUNNING, *_STATE_FOR.values(), INTERRUPTED)


def worker_name() -> str:
    """This process as host:pid, recorded on the jobs it runs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _lease(session: Session) -> timedelta:
    """The job lease of the settings this session was made with (the runtime puts them in info)."""
    settings = session.info.get("settings") or Settings()
    return timedelta(seconds=settings.job_lease_seconds)


def _stale(now: datetime, lease: timedelta):
    """SQL: a running job whose lease ran out (never renewed: counted from its start)."""
    cutoff = now - lease
    return and_(
        Job.state == RUNNING,
        or_(
            Job.heartbeat_at < cutoff,
            and_(Job.heartbeat_at.is_(None), or_(Job.started_at.is_(None), Job.started_at < cutoff)),
        ),
    )


def _is_stale(job: Job, now: datetime, lease: timedelta) -> bool:
    """The Python twin of _stale for one loaded job."""
    last = job.heartbeat_at or job.started_at
    return job.state == RUNNING and (last is None or last < now - lease)


def announce_jobs(session: Session) -> None:
    """Wake idle workers when this transaction commits (PostgreSQL NOTIFY; SQLite: they poll).

    PostgreSQL delivers a notification only on commit, and one per transaction for a payload
    repeated in it, so queueing many jobs at once sends one.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": JOBS_CHANNEL})


def _interrupt(session: Session, job: Job, now: datetime, lease: timedelta) -> Job | None:
    """Mark a stale running job interrupted and queue its retry; None if it was not stale after all.

    One atomic UPDATE, so that of the scheduler and a web request reaching the same stale job,
    only one queues the retry. The caller commits.
    """
    interrupted = session.execute(
        update(Job)
        .where(Job.id == job.id, _stale(now, lease))
        .values(
            state=INTERRUPTED,
            finished_at=now,
            reason=f"its process ({job.worker or 'unknown'}) stopped renewing its lease while it ran",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if not interrupted:
        return None
    session.refresh(job)
    retry = Job(source_id=job.source_id, state=QUEUED, trigger="retry", attempts=0,
                requested_by=job.requested_by)
    session.add(retry)
    session.flush()
    announce_jobs(session)
    return retry


def enqueue(session: Session, source_id: int, trigger: str, requested_by: str | None = None) -> Job:
    """Queue a capture of ``source_id`` unless one is already queued or running (caller commits).

    A running job whose lease ran out is never returned: it is interrupted and a retry queued.
    """
    if session.get(Source, source_id) is None:
        raise SamizdatError(f"no source with id {source_id}")
    active = select(Job).where(Job.source_id == source_id, Job.state.in_(ACTIVE_STATES)).order_by(Job.id)
    now, lease = utcnow(), _lease(session)
    jobs = session.scalars(active).all()
    live = [job for job in jobs if not _is_stale(job, now, lease)]
    if live:
        return live[0]
    for job in jobs:
        retry = _interrupt(session, job, now, lease)
        if retry is not None:
            return retry
    if jobs:
        # Another process interrupted them first and queued the retry: return that one.
        retry = session.scalars(active.where(Job.state == QUEUED).limit(1)).first()
        if retry is not None:
            return retry
    job = Job(source_id=source_id, state=QUEUED, trigger=trigger, requested_by=requested_by, attempts=0)
    session.add(job)
    session.flush()
    announce_jobs(session)
    return job


def _start(runtime: Runtime, job_id: int) -> int | None:
    """Claim a queued job; return its source id (None if another process took it first)."""
    now = utcnow()
    with runtime.Session() as session:
        # One atomic UPDATE ... WHERE state = 'queued': of two processes, exactly one wins.
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == QUEUED)
            .values(state=RUNNING, started_at=now, heartbeat_at=now, worker=worker_name(),
                    attempts=Job.attempts + 1)
        ).rowcount
        session.commit()
        if not claimed:
            return None
        return session.get(Job, job_id).source_id


def claim_jobs(runtime: Runtime, limit: int, worker: str | None = None) -> list[tuple[int, int]]:
    """Claim up to ``limit`` queued jobs for this process, oldest first; return (job, source) ids.

    Only the oldest queued job of a source is taken, and none of a source with a job running, so
    two workers never capture one source at once. On PostgreSQL the candidates are locked with
    ``FOR UPDATE SKIP LOCKED`` (rows another worker is claiming are passed over, not waited for);
    SQLite ignores the lock clause and the ``state = 'queued'`` guard of the UPDATE decides.
    """
    if limit < 1:
        return []
    other = aliased(Job)
    blocked = exists().where(
        other.source_id == Job.source_id,
        or_(other.state == RUNNING, and_(other.state == QUEUED, other.id < Job.id)),
    )
    candidates = (
        select(Job.id)
        .where(Job.state == QUEUED, ~blocked)
        .order_by(Job.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    now = utcnow()
    with runtime.Session() as session:
        ids = list(session.scalars(candidates))
        if not ids:
            session.rollback()
            return []
        rows = session.execute(
            update(Job)
            .where(Job.id.in_(ids), Job.state == QUEUED)
            .values(state=RUNNING, started_at=now, heartbeat_at=now, worker=worker or worker_name(),
                    attempts=Job.attempts + 1)
            .returning(Job.id, Job.source_id)
            .execution_options(synchronize_session=False)
        ).all()
        session.commit()
    return sorted((job_id, source_id) for job_id, source_id in rows)


def release_jobs(runtime: Runtime, job_ids: list[int], worker: str | None = None) -> int:
    """Put jobs this process claimed but will not finish back in the queue; return how many.

    Only jobs still running under this worker's name: one already interrupted (lease lost) has
    its retry queued by then.
    """
    if not job_ids:
        return 0
    with runtime.Session() as session:
        released = session.execute(
            update(Job)
            .where(Job.id.in_(job_ids), Job.state == RUNNING, Job.worker == (worker or worker_name()))
            .values(state=QUEUED, started_at=None, heartbeat_at=None, worker=None)
            .execution_options(synchronize_session=False)
        ).rowcount
        if released:
            announce_jobs(session)
        session.commit()
    return released


class JobLease:
    """Renews a running job's heartbeat from a background thread while the ``with`` block runs.

    Four renewals per lease, so one slow database write never makes a live job look dead.
    """

    def __init__(self, runtime: Runtime, job_id: int):
        self.runtime = runtime
        self.job_id = job_id
        self.period = runtime.settings.job_lease_seconds / 4
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-job-{job_id}", daemon=True)

    def __enter__(self) -> JobLease:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def _renew(self) -> None:
        while not self._stop.wait(self.period):
            try:
                with self.runtime.Session() as session:
                    session.execute(
                        update(Job)
                        .where(Job.id == self.job_id, Job.state == RUNNING)
                        .values(heartbeat_at=utcnow())
                    )
                    session.commit()
            except Exception:  # the database may be briefly away; the next renewal tries again
                log.warning("job %s: could not renew its lease", self.job_id, exc_info=True)


def _finish(runtime: Runtime, job_id: int, outcome: CaptureOutcome | None, error: str | None) -> None:
    """Record a job's end state, unless it was interrupted meanwhile (its lease had run out)."""
    if outcome is None:
        values = {"state": FAILED, "reason": error}
    else:
        values = {
            "state": _STATE_FOR[outcome.status],
            "capture_id": outcome.capture_id,
            "bytes": outcome.size,
            "reason": outcome.message if outcome.status == FAILED else None,
        }
    with runtime.Session() as session:
        finished = session.execute(
            update(Job).where(Job.id == job_id, Job.state == RUNNING).values(finished_at=utcnow(), **values)
        ).rowcount
        session.commit()
    if not finished:
        log.warning("job %s ended after it was interrupted (lease lost); its retry stands", job_id)


def run_job(runtime: Runtime, job_id: int, process: bool = True) -> CaptureOutcome | None:
    """Run one queued job to its end state; never raises for a capture problem.

    ``process`` is passed to capture_source: False leaves splitting and replication to the
    processing job (a worker's, or the scheduler's).
    """
    source_id = _start(runtime, job_id)
    if source_id is None:
        return None
    return run_claimed_job(runtime, job_id, source_id, process)


def run_claimed_job(
    runtime: Runtime, job_id: int, source_id: int, process: bool = True
) -> CaptureOutcome | None:
    """Capture the source of a job this process has claimed, under its lease; record the end."""
    # Every line logged while the job runs names it and its source (config/logs.py).
    with log_context(job_id=job_id, source_id=source_id):
        try:
            with JobLease(runtime, job_id):
                outcome = capture_source(runtime, source_id, process=process)
        except Exception as exc:  # a bug must not leave the job "running" forever
            log.exception("job %s crashed", job_id)
            _finish(runtime, job_id, None, f"internal error: {exc}")
            return None
        _finish(runtime, job_id, outcome, None)
    return outcome


def run_jobs(
    runtime: Runtime,
    job_ids: list[int],
    on_done: Callable[[CaptureOutcome], None] | None = None,
    process: bool = True,
) -> RunSummary:
    """Run the given queued jobs with the configured concurrency (one per source at a time)."""
    with runtime.Session() as session:
        rows = session.execute(select(Job.id, Job.source_id).where(Job.id.in_(job_ids))).all()
    job_for_source: dict[int, int] = {}
    for job_id, source_id in sorted(rows):
        job_for_source.setdefault(source_id, job_id)

    def capture_via_job(rt: Runtime, source_id: int) -> CaptureOutcome | None:
        return run_job(rt, job_for_source[source_id], process=process)

    return run_sources(runtime, list(job_for_source), on_done=on_done, capture=capture_via_job)


def run_queued_jobs(runtime: Runtime, process: bool = True) -> int:
    """Run every queued job, oldest first; return how many ran."""
    with runtime.Session() as session:
        queued = list(session.scalars(select(Job.id).where(Job.state == QUEUED).order_by(Job.id)))
    if not queued:
        return 0
    return run_jobs(runtime, queued, process=process).attempted


def enqueue_due_sources(runtime: Runtime) -> list[int]:
    """Queue a scheduled job for every due source; return the job ids."""
    with runtime.Session() as session:
        ids = [enqueue(session, source.id, "schedule").id for source in due_sources(session)]
        session.commit()
    return ids


def requeue_stale_jobs(runtime: Runtime) -> int:
    """Running jobs whose lease ran out (their process died) become interrupted and re-queued.

    Run by the scheduler at start-up and periodically; a job another process still renews is
    left alone.
    """
    now = utcnow()
    with runtime.Session() as session:
        lease = _lease(session)
        stale = list(session.scalars(select(Job).where(_stale(now, lease)).order_by(Job.id)))
        requeued = [job for job in stale if _interrupt(session, job, now, lease) is not None]
        session.commit()
    for job in requeued:
        log.warning("job %s (source %s) lost its lease (worker %s): re-queued", job.id, job.source_id, job.worker)
    return len(requeued)


def jobs_running(runtime: Runtime) -> bool:
    """Whether any capture job is running right now."""
    with runtime.Session() as session:
        return session.scalar(select(Job.id).where(Job.state == RUNNING).limit(1)) is not None
