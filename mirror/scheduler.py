"""The scheduler process: queues due sources, runs requested jobs, reconciles replicas.

It runs as its own process (`flask scheduler`), never inside gunicorn workers. Only one scheduler
is active per database (mirror.leader); another waits as a standby and takes over when it dies.
With ``scheduler_runs_jobs`` off, capturing and processing are left to `flask worker` processes
(mirror.worker) and the scheduler only decides what is due, reconciles and re-queues stale jobs.
Job ids are fixed so a restart never duplicates a job; the job store is in memory because what
is due is computed from the database on every tick.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
import signal
import threading
from datetime import datetime, timedelta, timezone

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler

from config.logs import configure_logging
from mirror.jobs import enqueue_due_sources, jobs_running, requeue_stale_jobs, run_queued_jobs
from mirror.leader import LeaderLock
from mirror.pipeline import process_pending_captures
from mirror.replicas import reconcile, verify_replicas
from samizdat.runtime import Runtime
from samizdat.tasks import PeriodicTask

log = logging.getLogger(__name__)

CAPTURE_JOB_ID = "mirror.capture-due-sources"
QUEUE_JOB_ID = "mirror.run-queued-jobs"
PROCESS_JOB_ID = "mirror.process-captures"
LEADER_JOB_ID = "mirror.keep-leadership"
RECONCILE_JOB_ID = "mirror.reconcile-replicas"
LEASE_JOB_ID = "mirror.requeue-stale-jobs"
VERIFY_JOB_ID = "mirror.verify-replicas"


def capture_due_sources(runtime: Runtime) -> int:
    """Queue a job for every due source; the queue job runs them (one consumer, bounded)."""
    job_ids = enqueue_due_sources(runtime)
    if job_ids:
        log.info("queued %d due source(s)", len(job_ids))
    return len(job_ids)


def run_requested_jobs(runtime: Runtime) -> int:
    """Run every queued job (scheduled, requested or re-queued) with the configured concurrency.

    Processing (split, replicate) is left to its own job, so fetching never waits for it.
    """
    return run_queued_jobs(runtime, process=False)


def process_captures(runtime: Runtime) -> int:
    """Split and replicate new captures; while captures are being fetched, only a trickle.

    Fetching is what the schedule waits on, and processing competes with it for the CPU, so
    processing mostly runs in the gaps between capture runs (measured: docs/benchmarks.md).
    """
    if jobs_running(runtime):
        return process_pending_captures(runtime, limit=2, workers=1)
    return process_pending_captures(runtime)


def verify_stored_replicas(runtime: Runtime) -> int:
    """Check a batch of stored replicas still exist; lost ones are left due for reconcile."""
    report = verify_replicas(runtime, limit=runtime.settings.replica_verify_batch)
    if report.lost:
        log.warning("verify: %d replica(s) lost by their back-end, re-pushing", len(report.lost))
    return len(report.lost)


def build_scheduler(runtime: Runtime, tasks: Sequence[PeriodicTask] = ()) -> BlockingScheduler:
    """A BlockingScheduler with its jobs under fixed ids, plus ``tasks`` other capabilities declare.

    Capturing (fetch, spool, record) and processing (split, replicate) run as separate jobs, so
    fetching never waits for S3, IPFS or the splitter. Stale jobs (their process died) are
    re-queued twice per lease, whoever ran them. With ``scheduler_runs_jobs`` off, the capture
    and processing jobs are not added: workers claim that work.
    """
    s = runtime.settings
    now = datetime.now(timezone.utc)
    # The first tick of each job runs at start-up rather than one interval later.
    runs_jobs = (
        (QUEUE_JOB_ID, run_requested_jobs, s.jobs_poll_seconds, now),
        (PROCESS_JOB_ID, process_captures, s.jobs_poll_seconds, now),
    ) if s.scheduler_runs_jobs else ()
    jobs = (
        (CAPTURE_JOB_ID, capture_due_sources, s.scheduler_tick_seconds, now),
        *runs_jobs,
        (RECONCILE_JOB_ID, reconcile, s.reconcile_seconds, now + timedelta(seconds=1)),
        (LEASE_JOB_ID, requeue_stale_jobs, s.job_lease_seconds / 2, now),
        (VERIFY_JOB_ID, verify_stored_replicas, s.replica_verify_seconds,
         now + timedelta(seconds=min(60.0, s.replica_verify_seconds))),
        *((task.id, task.func, task.seconds, now + timedelta(seconds=2)) for task in tasks),
    )
    scheduler = BlockingScheduler(
        # A thread for every job (and the leadership check): a slow one (a hung back-end)
        # must never keep the others from running.
        executors={"default": ThreadPoolExecutor(len(jobs) + 1)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 300},
        timezone="UTC",
    )
    for job_id, func, seconds, first in jobs:
        scheduler.add_job(
            _quiet_when_stopping(func), "interval", seconds=seconds, args=[runtime], id=job_id,
            replace_existing=True, next_run_time=first,
        )
    return scheduler


def _skip_busy_runs(record: logging.LogRecord) -> bool:
    """Drop APScheduler's "skipped: maximum number of running instances" warnings.

    With max_instances=1 a tick that finds its job still running (a long capture batch) is
    expected, not a problem; logged, it would be a line every few seconds.
    """
    return "maximum number of running instances" not in record.getMessage()


def _quiet_when_stopping(func: Callable) -> Callable:
    """``func``, except that a run that starts as the process exits is dropped with one line.

    On SIGTERM/SIGINT the scheduler stops without waiting, and the interpreter begins to exit:
    a job whose tick fell in that moment cannot start its thread pool (concurrent.futures
    refuses new work then). Nothing was claimed yet, so nothing is lost; it is not an error.
    """

    @functools.wraps(func)
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except RuntimeError as exc:
            if "interpreter shutdown" not in str(exc):
                raise
            log.info("%s: not run, the process is stopping", getattr(func, "__name__", func))
            return None

    return run


def run_scheduler(runtime: Runtime, tasks: Sequence[PeriodicTask] = ()) -> None:
    """Wait for leadership (standby), then run until SIGTERM or SIGINT.

    ``tasks`` are periodic tasks of capabilities downstream of mirror (the embed's publish),
    handed in by the composition root so that mirror never imports them.
    """
    configure_logging(runtime.settings.log_format)
    # APScheduler logs every run of every job at INFO (a line per tick); only state changes and
    # failures belong in the log, and its warnings (missed runs) and errors still come through.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").addFilter(_skip_busy_runs)
    stopping = threading.Event()
    scheduler: BlockingScheduler | None = None

    def shut_down() -> None:
        try:
            scheduler.shutdown(wait=False)
        except SchedulerNotRunningError:
            pass  # a second signal (run.sh's TERM after the terminal's INT), or not started yet

    def stop(signum, _frame):
        log.info("signal %s: scheduler stopping", signum)
        stopping.set()
        if scheduler is not None and scheduler.running:
            # Never from the handler itself: the signal may land while the main thread holds
            # the thread pool's lock (submitting a job), and shutdown() takes that same lock, so
            # Ctrl-C on `make run` hung forever. Another thread waits for the lock instead.
            threading.Thread(target=shut_down, name="scheduler-stop", daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    lock = LeaderLock(runtime.settings, runtime.engine)
    announced = False
    while not lock.acquire():
        if not announced:
            log.info("another scheduler is active: standing by")
            announced = True
        if stopping.wait(runtime.settings.standby_retry_seconds):
            log.info("scheduler stopped")
            return
    try:
        log.info(
            "scheduler active: tick every %ss%s", runtime.settings.scheduler_tick_seconds,
            "" if runtime.settings.scheduler_runs_jobs else "; captures and processing left to workers",
        )
        scheduler = build_scheduler(runtime, tasks)

        def keep_leadership() -> None:
            if stopping.is_set():
                # A signal that came between the check below and start() found it not running.
                shut_down()
                return
            # A lost PostgreSQL connection drops the advisory lock: stop, so that a standby
            # can take over, rather than risk two active schedulers.
            if not lock.still_held():
                log.error("lost the scheduler lock: stopping")
                scheduler.shutdown(wait=False)

        scheduler.add_job(
            keep_leadership, "interval", seconds=runtime.settings.standby_retry_seconds,
            id=LEADER_JOB_ID, replace_existing=True,
        )
        if not stopping.is_set():
            scheduler.start()
    finally:
        # The scheduler's own capture jobs may have started Chromiums: none outlives the process.
        runtime.close_browser()
        lock.release()
    log.info("scheduler stopped")
