"""The scheduler process: captures every due source on its interval.

It runs as its own process (`flask scheduler`), never inside gunicorn workers. Job ids are fixed so
a restart never duplicates a job; the job store is in memory because what is due is computed from
the database on every tick.
"""

from __future__ import annotations

import logging
import signal
from datetime import datetime, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler

from mirror.pipeline import run_sources
from mirror.sources import due_sources
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

CAPTURE_JOB_ID = "mirror.capture-due-sources"


def capture_due_sources(runtime: Runtime) -> int:
    """Capture every source that is due now; return how many were attempted."""
    with runtime.Session() as session:
        ids = [s.id for s in due_sources(session)]
    if not ids:
        return 0
    summary = run_sources(runtime, ids)
    log.info("scheduled run: %d captured, %d failed", len(summary.ok), len(summary.failed))
    return summary.attempted


def build_scheduler(runtime: Runtime) -> BlockingScheduler:
    """A BlockingScheduler with the capture job registered under its fixed id."""
    scheduler = BlockingScheduler(
        executors={"default": ThreadPoolExecutor(2)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    scheduler.add_job(
        capture_due_sources,
        "interval",
        seconds=runtime.settings.scheduler_tick_seconds,
        args=[runtime],
        id=CAPTURE_JOB_ID,
        replace_existing=True,
        # The first tick runs at start-up rather than one interval later.
        next_run_time=datetime.now(timezone.utc),
    )
    return scheduler


def run_scheduler(runtime: Runtime) -> None:
    """Run until SIGTERM or SIGINT, running the first tick immediately."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheduler = build_scheduler(runtime)

    def stop(signum, _frame):
        log.info("signal %s: scheduler stopping", signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("scheduler started: tick every %ss", runtime.settings.scheduler_tick_seconds)
    scheduler.start()
    log.info("scheduler stopped")
