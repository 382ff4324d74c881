"""Job leases: a job whose process is killed mid-run is re-queued, never left `running` for good."""

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

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


def flask(settings, *args: str, stdout: Path | None = None) -> subprocess.Popen:
    """`flask ARGS…` as its own process, on these settings and this job lease.

    Its output goes to a pipe, or to the file ``stdout`` (for a process the test reads while it runs).
    """
    env = settings_env(
        settings, SAMIZDAT_JOB_LEASE_SECONDS=str(LEASE), SAMIZDAT_JOBS_POLL_SECONDS="0.3",
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5", SAMIZDAT_FETCH_TIMEOUT="30",
    )
    out = subprocess.PIPE if stdout is None else open(stdout, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                            stdout=out, stderr=subprocess.STDOUT)


def start_mirror_run(runtime, settings, url: str) -> tuple[subprocess.Popen, Job]:
    """A `flask mirror run` of ``url`` (a paused source), once its job has renewed its lease."""
    with runtime.Session() as session:
        source = add_source(session, url, 60).source
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


@pytest.fixture
def silent_server():
    """A loopback listener that accepts connections and never answers: a fetch of it hangs.

    Closing it resets those connections, which ends such a fetch at once.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)  # connections complete in the kernel's backlog; nothing ever reads them
    yield listener
    listener.close()


def test_a_live_job_keeps_its_lease_and_a_killed_one_is_never_returned_by_capture_now(runtime, settings, site):
    proc, job = start_mirror_run(runtime, settings, site.url("/slow"))
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


def test_the_running_scheduler_requeues_a_killed_mirror_runs_job_on_its_own(
    runtime, settings, tmp_path, silent_server
):
    # The mirror run's job runs first (a scheduler started before it could run its queued job
    # itself), on a page that never answers, so it is still running once the scheduler is up.
    url = f"http://127.0.0.1:{silent_server.getsockname()[1]}/hangs"
    proc, job = start_mirror_run(runtime, settings, url)
    log = tmp_path / "scheduler.log"
    scheduler = flask(settings, "scheduler", stdout=log)
    try:
        wait_for(lambda: "scheduler active" in log.read_text(), 60, "the scheduler becoming active")
        assert next(j for j in jobs(runtime) if j.id == job.id).state == "running"  # alive: left alone
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

        def retried():
            return [j for j in jobs(runtime) if j.trigger == "retry" and j.worker]

        (retry,) = wait_for(retried, 10 * LEASE + 20, "the scheduler re-queuing and taking the killed job")
    finally:
        silent_server.close()  # the retry's fetch ends, so the scheduler stops at once
        scheduler.send_signal(signal.SIGTERM)
        scheduler.wait(60)
    output = log.read_text()
    interrupted = next(j for j in jobs(runtime) if j.id == job.id)
    assert interrupted.state == "interrupted", output
    assert retry.worker.endswith(f":{scheduler.pid}") and retry.source_id == job.source_id, output
    assert "lost its lease" in output
