"""The worker process (`flask worker`): claims capture jobs and processing work from the database.

Any number of workers, on any number of machines, share one PostgreSQL database: each claims
queued jobs with ``SELECT … FOR UPDATE SKIP LOCKED`` (mirror.jobs.claim_jobs) and captures them
under the job's lease, and splits and replicates new captures claimed the same way
(mirror.pipeline.claim_captures). The scheduler then only decides what is due
(``SAMIZDAT_SCHEDULER_RUNS_JOBS=0``). On SQLite a worker works too, on the database's own machine.
An idle worker polls every ``jobs_poll_seconds``; on PostgreSQL it also LISTENs, so a queued job
wakes it at once.

SIGTERM or SIGINT: stop claiming and finish the jobs in hand (each is bounded by the fetch
timeouts); a second signal gives unfinished jobs back to the queue and exits at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from mirror.jobs import (
    JOBS_CHANNEL,
    claim_jobs,
    jobs_running,
    release_jobs,
    run_claimed_job,
    worker_name,
)
from mirror.pipeline import process_pending_captures
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class WorkerSummary:
    """What one worker process did: jobs run and captures processed."""

    jobs: int = 0
    processed: int = 0
    released: list[int] = field(default_factory=list)


class Worker:
    """Claims and runs capture jobs with ``concurrency`` threads, and processes new captures.

    Processing (split, offline copy, replication) runs in one thread of its own that takes a
    trickle of captures while fetches run and the rest between them, as the scheduler does:
    fetching is what the schedule waits on.
    """

    def __init__(self, runtime: Runtime, concurrency: int | None = None):
        self.runtime = runtime
        self.concurrency = max(1, concurrency or runtime.settings.capture_concurrency)
        self.name = worker_name()
        self.stopping = threading.Event()
        self.summary = WorkerSummary()
        self._inflight: dict[Future, int] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()

    def stop(self) -> None:
        """Stop claiming; the jobs in hand are finished."""
        self.stopping.set()
        self._wake.set()

    def release(self) -> list[int]:
        """Give the jobs in hand back to the queue (a second signal: leave now)."""
        with self._lock:
            job_ids = list(self._inflight.values())
        released = release_jobs(self.runtime, job_ids, self.name)
        if released:
            log.warning("worker %s: gave %d unfinished job(s) back to the queue", self.name, released)
        self.summary.released = job_ids
        return job_ids

    def run(self, drain: bool = False) -> WorkerSummary:
        """Run until stopped; with ``drain``, until no job is left to claim, then process the rest."""
        poll = self.runtime.settings.jobs_poll_seconds
        processor = threading.Thread(target=self._process_loop, name="worker-process", daemon=True)
        processor.start()
        if self.runtime.engine.dialect.name == "postgresql":
            threading.Thread(target=self._listen, name="worker-listen", daemon=True).start()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="worker-capture") as pool:
            while not self.stopping.is_set():
                # Cleared before claiming: a job queued after this claim wakes the wait below.
                self._wake.clear()
                claimed = self._claim(self.concurrency - len(self._inflight))
                for job_id, source_id in claimed:
                    # process=False: the capture is recorded, and processing threads (this
                    # worker's or another's) split and replicate it, so fetching never waits.
                    future = pool.submit(run_claimed_job, self.runtime, job_id, source_id, False)
                    with self._lock:
                        self._inflight[future] = job_id
                if drain and not claimed and not self._inflight:
                    break
                if self._inflight and (claimed or len(self._inflight) >= self.concurrency):
                    # Full: wake when one ends, to claim the next at once.
                    done, _ = wait(list(self._inflight), timeout=poll, return_when=FIRST_COMPLETED)
                    self._reap(done)
                else:
                    self._wake.wait(poll)
                    self._reap([f for f in list(self._inflight) if f.done()])
            if self._inflight:
                log.info("worker %s: finishing %d job(s) in hand", self.name, len(self._inflight))
            self._reap(wait(list(self._inflight)).done)
        self.stopping.set()
        processor.join()
        if drain:
            # What the last jobs captured is processed before a draining worker exits.
            while count := process_pending_captures(self.runtime, limit=50, workers=1):
                self.summary.processed += count
        return self.summary

    def _claim(self, free: int) -> list[tuple[int, int]]:
        if free < 1:
            return []
        try:
            return claim_jobs(self.runtime, free, self.name)
        except Exception:  # the database may be briefly away: try again on the next poll
            log.warning("worker %s: could not claim jobs", self.name, exc_info=True)
            return []

    def _reap(self, done) -> None:
        with self._lock:
            for future in done:
                if self._inflight.pop(future, None) is not None:
                    self.summary.jobs += 1

    def _listen(self) -> None:
        """Wake the claiming loop whenever a job is queued (PostgreSQL LISTEN on its own connection).

        Polling stays the fallback: a lost connection is retried, and nothing is missed meanwhile
        beyond one poll interval.
        """
        poll = self.runtime.settings.jobs_poll_seconds
        announced = False
        while not self.stopping.is_set():
            conn = None
            try:
                conn = self.runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                conn.exec_driver_sql(f"LISTEN {JOBS_CHANNEL}")
                if not announced:
                    log.info("worker %s: listening for queued jobs", self.name)
                    announced = True
                driver = conn.connection.driver_connection
                while not self.stopping.is_set():
                    for _ in driver.notifies(timeout=1.0, stop_after=1):
                        self._wake.set()
                conn.exec_driver_sql("UNLISTEN *")  # the connection goes back to the pool
            except Exception:
                log.warning("worker %s: lost the job notifications; polling meanwhile", self.name, exc_info=True)
                if conn is not None:
                    conn.invalidate()  # never hand a connection still listening to the pool
                self.stopping.wait(poll)
            finally:
                if conn is not None:
                    conn.close()

    def _process_loop(self) -> None:
        """Process new captures until stopped."""
        poll = self.runtime.settings.jobs_poll_seconds
        while not self.stopping.is_set():
            try:
                # A trickle while fetches run (they share this interpreter's CPU), then the rest.
                busy = bool(self._inflight) or jobs_running(self.runtime)
                count = process_pending_captures(self.runtime, limit=2 if busy else 10, workers=1)
            except Exception:
                log.warning("worker %s: processing failed; trying again", self.name, exc_info=True)
                count = 0
            self.summary.processed += count
            if not count:
                self.stopping.wait(poll)


def run_worker(runtime: Runtime, concurrency: int | None = None, drain: bool = False) -> WorkerSummary:
    """The `flask worker` process: log, handle signals, run until stopped (or drained)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = Worker(runtime, concurrency)
    signals = {"count": 0}

    def on_signal(signum, _frame):
        signals["count"] += 1
        if signals["count"] == 1:
            log.info("signal %s: worker %s stopping after the jobs in hand", signum, worker.name)
            worker.stop()
            return
        worker.release()
        runtime.close_browser()  # os._exit skips every cleanup: no Chromium may outlive us
        log.info("worker %s stopped (jobs given back)", worker.name)
        logging.shutdown()
        os._exit(1)  # the capture threads are mid-fetch: nothing left to wait for

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("worker %s ready: %d capture thread(s), polling every %ss",
             worker.name, worker.concurrency, runtime.settings.jobs_poll_seconds)
    try:
        summary = worker.run(drain=drain)
    finally:
        runtime.close_browser()
    log.info("worker %s stopped: %d job(s) run, %d capture(s) processed",
             worker.name, summary.jobs, summary.processed)
    return summary
