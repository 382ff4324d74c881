"""Workers: jobs and captures claimed by exactly one process, `flask worker` as its own process."""

import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import create_engine, func, select, text

from mirror.jobs import claim_jobs, enqueue, release_jobs, run_claimed_job
from mirror.models import Capture, Job
from mirror.pipeline import capture_source, claim_captures, process_pending_captures
from mirror.sources import add_source
from samizdat.runtime import build_runtime
from tests.conftest import _truncate_all, make_settings
from tests.services import ROOT, settings_env
from tests.sites import seed_names


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), the local store only, short polls."""
    return make_settings(tmp_path, database_url, jobs_poll_seconds=0.2, job_lease_seconds=5.0)


@pytest.fixture
def runtime(settings):
    """The runtime for these settings."""
    rt = build_runtime(settings)
    yield rt
    rt.dispose()


def add_sources(runtime, urls, queue=True) -> list[int]:
    """Add sources (and queue a job for each); return the source ids."""
    with runtime.Session() as session:
        ids = [add_source(session, url, 60).source.id for url in urls]
        session.flush()
        if queue:
            for source_id in ids:
                enqueue(session, source_id, "request")
        session.commit()
    return ids


def article_urls(site, n):
    names = seed_names()
    return [site.url(f"/articles/{names[i % len(names)]}.html?copy={i}") for i in range(n)]


def test_concurrent_claims_share_the_queue_without_overlap(runtime, site):
    add_sources(runtime, article_urls(site, 40))
    claims: list[list[tuple[int, int]]] = [[] for _ in range(4)]
    start = threading.Barrier(4)

    def claimer(i):
        start.wait()
        while batch := claim_jobs(runtime, 3, worker=f"test:{i}"):
            claims[i].extend(batch)

    threads = [threading.Thread(target=claimer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    taken = [job_id for batch in claims for job_id, _ in batch]
    assert len(taken) == 40 and len(set(taken)) == 40
    with runtime.Session() as session:
        jobs = list(session.scalars(select(Job)))
    assert {j.state for j in jobs} == {"running"}
    assert all(j.worker.startswith("test:") and j.heartbeat_at and j.attempts == 1 for j in jobs)
    owner = {job_id: f"test:{i}" for i, batch in enumerate(claims) for job_id, _ in batch}
    assert all(owner[j.id] == j.worker for j in jobs)


def test_a_source_is_never_claimed_twice_at_once(runtime, site):
    (source_id,) = add_sources(runtime, article_urls(site, 1), queue=False)
    with runtime.Session() as session:
        # Two queued jobs of one source (two requests racing past enqueue's check).
        session.add_all([Job(source_id=source_id, state="queued", trigger="request", attempts=0)
                         for _ in range(2)])
        session.commit()
    first = claim_jobs(runtime, 10, worker="a")
    assert len(first) == 1
    assert claim_jobs(runtime, 10, worker="b") == []  # its job is running: the other one waits
    run_claimed_job(runtime, *first[0], process=False)
    second = claim_jobs(runtime, 10, worker="b")
    assert len(second) == 1 and second[0][0] > first[0][0]


def test_claiming_skips_rows_another_transaction_has_locked(tmp_path, postgres_url, site):
    # PostgreSQL only: row locks are what let workers on many machines claim side by side.
    _truncate_all(postgres_url)
    rt = build_runtime(make_settings(tmp_path, postgres_url))
    engine = create_engine(postgres_url)
    try:
        add_sources(rt, article_urls(site, 3))
        with engine.connect() as other:
            # Another worker is mid-claim on the oldest job: its row is locked.
            oldest = other.execute(text("SELECT id FROM jobs ORDER BY id LIMIT 1 FOR UPDATE")).scalar()
            started = time.monotonic()
            claimed = claim_jobs(rt, 10, worker="b")
            waited = time.monotonic() - started
            other.rollback()
    finally:
        engine.dispose()
        rt.dispose()
    assert sorted(job_id for job_id, _ in claimed) == [oldest + 1, oldest + 2]
    assert waited < 5, "claiming waited for the locked row instead of skipping it"


def test_released_jobs_return_to_the_queue(runtime, site):
    add_sources(runtime, article_urls(site, 2))
    claimed = claim_jobs(runtime, 2, worker="me")
    assert release_jobs(runtime, [job_id for job_id, _ in claimed], worker="someone else") == 0
    assert release_jobs(runtime, [job_id for job_id, _ in claimed], worker="me") == 2
    with runtime.Session() as session:
        assert {(j.state, j.worker) for j in session.scalars(select(Job))} == {("queued", None)}
    assert len(claim_jobs(runtime, 5, worker="next")) == 2


def test_concurrent_processing_claims_take_each_capture_once(runtime, site):
    ids = add_sources(runtime, article_urls(site, 12), queue=False)
    for source_id in ids:
        capture_source(runtime, source_id, process=False)
    claims: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(3)

    def claimer():
        start.wait()
        while batch := claim_captures(runtime, 2):
            with lock:
                claims.extend(capture_id for capture_id, _ in batch)

    threads = [threading.Thread(target=claimer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(claims) == sorted(set(claims)) and len(claims) == 12


def test_parallel_processing_runs_split_each_capture_once(runtime, site):
    ids = add_sources(runtime, article_urls(site, 6), queue=False)
    for source_id in ids:
        capture_source(runtime, source_id, process=False)
    counts: list[int] = []
    runs = [threading.Thread(target=lambda: counts.append(process_pending_captures(runtime, workers=2)))
            for _ in range(3)]
    for t in runs:
        t.start()
    for t in runs:
        t.join(120)
    assert sum(counts) == 6
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).where(Capture.processed_at.is_(None))) == 0
        offline = session.scalar(
            text("SELECT count(*) FROM capture_parts WHERE role = 'offline'")
        )
    assert offline == 6  # one offline copy each: nothing was processed twice


def _worker(settings, *args, log=None, **env):
    out = subprocess.PIPE if log is None else open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", *args], cwd=ROOT,
        env=settings_env(settings, **{"SAMIZDAT_JOBS_POLL_SECONDS": "0.2", **env}),
        stdout=out, stderr=subprocess.STDOUT,
    )


def test_flask_worker_drain_captures_and_processes_the_queue(runtime, settings, site):
    add_sources(runtime, article_urls(site, 5))
    proc = _worker(settings, "--drain", "--concurrency", "2")
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 0, output
    assert "5 job(s) run, 5 capture(s) processed" in output
    with runtime.Session() as session:
        jobs = list(session.scalars(select(Job)))
        captures = list(session.scalars(select(Capture)))
    assert {j.state for j in jobs} == {"succeeded"}
    assert {j.worker.rsplit(":", 1)[1] for j in jobs} == {str(proc.pid)}
    assert len(captures) == 5 and all(c.processed_at is not None for c in captures)


def test_sigterm_lets_the_worker_finish_the_job_in_hand(runtime, settings, site, tmp_path):
    (source_id,) = add_sources(runtime, [site.url("/slow")])  # answers after 3 s
    log = tmp_path / "worker.log"
    proc = _worker(settings, log=log, SAMIZDAT_FETCH_TIMEOUT="10")

    def running():
        with runtime.Session() as session:
            return session.scalar(select(Job.state).where(Job.source_id == source_id)) == "running"

    deadline = time.monotonic() + 60
    while not running():
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()
    with runtime.Session() as session:
        job = session.scalar(select(Job).where(Job.source_id == source_id))
    assert job.state == "succeeded", (job.state, job.reason, log.read_text())
    assert "stopping after the jobs in hand" in log.read_text()


def test_a_second_sigterm_gives_the_job_back(runtime, settings, site, tmp_path):
    (source_id,) = add_sources(runtime, [site.url("/slow")])
    log = tmp_path / "worker.log"
    proc = _worker(settings, log=log, SAMIZDAT_FETCH_TIMEOUT="10")

    def running():
        with runtime.Session() as session:
            return session.scalar(select(Job.state).where(Job.source_id == source_id)) == "running"

    deadline = time.monotonic() + 60
    while not running():
        assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) != 0
    with runtime.Session() as session:
        job = session.scalar(select(Job).where(Job.source_id == source_id))
    assert (job.state, job.worker) == ("queued", None), log.read_text()


def test_a_queued_job_wakes_an_idle_worker_on_postgresql(tmp_path, postgres_url, site):
    # The poll is a minute: only the NOTIFY sent when the job is queued can wake the worker sooner.
    _truncate_all(postgres_url)
    settings = make_settings(tmp_path, postgres_url)
    rt = build_runtime(settings)
    log = tmp_path / "worker.log"
    proc = _worker(settings, log=log, SAMIZDAT_JOBS_POLL_SECONDS="60")
    try:
        deadline = time.monotonic() + 60
        while "listening for queued jobs" not in log.read_text():
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.1)
        time.sleep(1)  # its first claim found nothing: it now waits out its minute-long poll
        (source_id,) = add_sources(rt, article_urls(site, 1))

        def state():
            with rt.Session() as session:
                return session.scalar(select(Job.state).where(Job.source_id == source_id))

        deadline = time.monotonic() + 30
        while state() != "succeeded":
            assert time.monotonic() < deadline, f"the job was not picked up before the poll: {log.read_text()}"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        rt.dispose()
    assert proc.returncode == 0, log.read_text()


def test_a_scheduler_with_workers_only_queues_and_tidies(settings):
    from mirror.scheduler import PROCESS_JOB_ID, QUEUE_JOB_ID, build_scheduler

    def job_ids(s):
        rt = build_runtime(s)
        try:
            return {job.id for job in build_scheduler(rt).get_jobs()}
        finally:
            rt.dispose()

    alone, with_workers = job_ids(settings), job_ids(settings.replace(scheduler_runs_jobs=False))
    assert {QUEUE_JOB_ID, PROCESS_JOB_ID} <= alone
    assert alone - with_workers == {QUEUE_JOB_ID, PROCESS_JOB_ID}
    assert "mirror.capture-due-sources" in with_workers and "mirror.requeue-stale-jobs" in with_workers
