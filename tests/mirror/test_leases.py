"""Job leases: a job whose process is killed mid-run is re-queued, never left `running` for good."""

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import select

from mirror.jobs import enqueue, requeue_stale_jobs
from mirror.models import Job
from mirror.sources import add_source
from samizdat.runtime import build_runtime
from tests.conftest import make_settings
from tests.services import ROOT, settings_env

LEASE = 2.0  # seconds; the heartbeat renews it every LEASE / 4


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only, a two-second job lease."""
    return make_settings(tmp_path, database_url, job_lease_seconds=LEASE, jobs_poll_seconds=0.3)


@pytest.fixture
def runtime(settings):
    """The runtime for these settings."""
    rt = build_runtime(settings)
    yield rt
    rt.dispose()


def wait_for(predicate, timeout: float, what: str):
    """Poll ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def jobs(runtime) -> list[Job]:
    with runtime.Session() as session:
        return list(session.scalars(select(Job).order_by(Job.id)))


def flask(settings, *args: str) -> subprocess.Popen:
    """`flask ARGS…` as its own process, on these settings and this job lease."""
    env = settings_env(
        settings, SAMIZDAT_JOB_LEASE_SECONDS=str(LEASE), SAMIZDAT_JOBS_POLL_SECONDS="0.3",
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5",
    )
    return subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def start_slow_mirror_run(runtime, settings, site) -> tuple[subprocess.Popen, Job]:
    """A `flask mirror run` of a page that takes three seconds, once its job has renewed its lease."""
    with runtime.Session() as session:
        source = add_source(session, site.url("/slow"), 60).source
        source.active = False  # never due: only the mirror run may capture it
        session.commit()
        source_id = source.id
    proc = flask(settings, "mirror", "run", str(source_id))

    def renewed():
        running = [j for j in jobs(runtime) if j.state == "running"]
        return running and running[0].heartbeat_at > running[0].started_at and running[0]

    try:
        return proc, wait_for(renewed, 30, "the mirror run's job renewing its heartbeat")
    except AssertionError:
        proc.kill()
        raise AssertionError(proc.communicate()[0].decode()) from None


def test_a_live_job_keeps_its_lease_and_a_killed_ones_is_never_returned_by_capture_now(runtime, settings, site):
    proc, job = start_slow_mirror_run(runtime, settings, site)
    assert job.worker.endswith(f":{proc.pid}")
    # Alive and renewing: nobody takes it away, and "Capture now" gets that same job.
    assert requeue_stale_jobs(runtime) == 0
    with runtime.Session() as session:
        assert enqueue(session, job.source_id, "request").id == job.id
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)

    def capture_now():
        with runtime.Session() as session:
            queued = enqueue(session, job.source_id, "request", requested_by="ana")
            session.commit()
            return queued if queued.id != job.id else None

    retry = wait_for(capture_now, 5 * LEASE, "capture now returning a fresh job")
    assert retry.state == "queued"
    by_id = {j.id: j for j in jobs(runtime)}
    assert by_id[job.id].state == "interrupted" and str(proc.pid) in by_id[job.id].reason
    assert [j.state for j in by_id.values()].count("queued") == 1
    assert requeue_stale_jobs(runtime) == 0  # already handled: no second retry


def test_the_running_scheduler_requeues_a_killed_mirror_runs_job_on_its_own(runtime, settings, site):
    scheduler = flask(settings, "scheduler")
    proc, job = start_slow_mirror_run(runtime, settings, site)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def retried():
            return [j for j in jobs(runtime) if j.trigger == "retry" and j.state == "succeeded"]

        (retry,) = wait_for(retried, 60, "the scheduler re-queuing and running the killed job")
    finally:
        scheduler.send_signal(signal.SIGTERM)
        output = scheduler.communicate(timeout=30)[0].decode()
    interrupted = next(j for j in jobs(runtime) if j.id == job.id)
    assert interrupted.state == "interrupted", output
    assert retry.worker.endswith(f":{scheduler.pid}") and retry.capture_id
    assert "lost its lease" in output
