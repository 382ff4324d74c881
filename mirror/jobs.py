"""Capture jobs: queued by the web app or the schedule, run by the scheduler process.

The web process never captures by itself: it queues a job, and the scheduler (the only process
that captures) picks it up within ``jobs_poll_seconds``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, update

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
ACTIVE_STATES = (QUEUED, RUNNING)
_STATE_FOR = {OK: SUCCEEDED, UNCHANGED: "unchanged", FAILED: "failed"}
# Every state a job can be in, in the order of its life (pages offer them as a filter).
JOB_STATES = (QUEUED, RUNNING, *_STATE_FOR.values(), INTERRUPTED)


def enqueue(session, source_id: int, trigger: str, requested_by: str | None = None) -> Job:
    """Queue a capture of ``source_id`` unless one is already queued or running (caller commits)."""
    if session.get(Source, source_id) is None:
        raise SamizdatError(f"no source with id {source_id}")
    existing = session.scalars(
        select(Job).where(Job.source_id == source_id, Job.state.in_(ACTIVE_STATES)).limit(1)
    ).first()
    if existing is not None:
        return existing
    job = Job(source_id=source_id, state=QUEUED, trigger=trigger, requested_by=requested_by, attempts=0)
    session.add(job)
    session.flush()
    return job


def _start(runtime: Runtime, job_id: int) -> int | None:
    """Claim a queued job; return its source id (None if another process took it first)."""
    with runtime.Session() as session:
        # One atomic UPDATE ... WHERE state = 'queued': of two processes, exactly one wins.
        claimed = session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state == QUEUED)
            .values(state=RUNNING, started_at=utcnow(), attempts=Job.attempts + 1)
        ).rowcount
        session.commit()
        if not claimed:
            return None
        return session.get(Job, job_id).source_id


def _finish(runtime: Runtime, job_id: int, outcome: CaptureOutcome | None, error: str | None) -> None:
    with runtime.Session() as session:
        job = session.get(Job, job_id)
        job.finished_at = utcnow()
        if outcome is None:
            job.state = FAILED
            job.reason = error
        else:
            job.state = _STATE_FOR[outcome.status]
            job.capture_id = outcome.capture_id
            job.bytes = outcome.size
            job.reason = outcome.message if outcome.status == FAILED else None
        session.commit()


def run_job(runtime: Runtime, job_id: int, process: bool = True) -> CaptureOutcome | None:
    """Run one queued job to its end state; never raises for a capture problem.

    ``process`` is passed to capture_source: False leaves splitting and replication to the
    scheduler's processing job.
    """
    source_id = _start(runtime, job_id)
    if source_id is None:
        return None
    try:
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


def recover_interrupted(runtime: Runtime) -> int:
    """At scheduler start: jobs left running by a killed scheduler become interrupted and re-queued."""
    with runtime.Session() as session:
        stuck = list(session.scalars(select(Job).where(Job.state == RUNNING)))
        for job in stuck:
            job.state = INTERRUPTED
            job.finished_at = utcnow()
            job.reason = "the scheduler stopped while this job was running"
            session.add(Job(source_id=job.source_id, state=QUEUED, trigger="retry", attempts=0,
                            requested_by=job.requested_by))
        session.commit()
    if stuck:
        log.warning("re-queued %d interrupted job(s)", len(stuck))
    return len(stuck)


def jobs_running(runtime: Runtime) -> bool:
    """Whether any capture job is running right now."""
    with runtime.Session() as session:
        return session.scalar(select(Job.id).where(Job.state == RUNNING).limit(1)) is not None
