"""The scheduler as its own process: it captures due sources and stops cleanly on SIGTERM."""

import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import select

from mirror.jobs import enqueue
from mirror.models import Capture, Job, Source
from mirror.sources import add_source, due_sources
from samizdat.db import utcnow
from tests.services import ROOT, settings_env
from tests.sites import seed_names


def test_due_sources_respects_intervals_and_pauses(runtime, site):
    with runtime.Session() as session:
        fresh = add_source(session, site.url("/a"), 60).source
        stale = add_source(session, site.url("/b"), 60).source
        paused = add_source(session, site.url("/c"), 60).source
        paused.active = False
        session.add(Capture(source_id=fresh.id, status="ok", url=fresh.url, fetched_at=utcnow()))
        session.add(
            Capture(
                source_id=stale.id,
                status="failed",
                url=stale.url,
                fetched_at=utcnow() - timedelta(minutes=61),
            )
        )
        session.commit()
        assert [s.id for s in due_sources(session)] == [stale.id]
        later = utcnow() + timedelta(minutes=61)
        assert [s.id for s in due_sources(session, later)] == [fresh.id, stale.id]


def test_scheduler_process_captures_due_sources(settings, runtime, site):
    url = site.url(f"/articles/{seed_names()[0]}.html")
    with runtime.Session() as session:
        add_source(session, url, 60)
        session.commit()
    env = settings_env(settings, SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5")
    proc = _start_scheduler(env)
    captures: list[Capture] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not captures and proc.poll() is None:
            time.sleep(0.3)
            with runtime.Session() as session:
                captures = list(session.scalars(select(Capture)))
        # Several more ticks pass: the source is not due again for an hour, so nothing repeats.
        time.sleep(2)
        with runtime.Session() as session:
            total = len(list(session.scalars(select(Capture))))
            assert session.scalar(select(Source.url)) == url
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    assert [c.status for c in captures] == ["ok"], f"scheduler captured nothing:\n{output}"
    assert total == 1, output
    assert proc.returncode == 0, output
    assert "scheduler stopped" in output


def _start_scheduler(env, log=None):
    """`flask scheduler` as its own process; its output goes to ``log`` (a path) or a pipe."""
    out = subprocess.PIPE if log is None else open(log, "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "scheduler"],
        cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
    )


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def test_a_second_scheduler_stands_by_and_takes_over(settings, runtime, site, tmp_path):
    env = settings_env(
        settings,
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5",
        SAMIZDAT_JOBS_POLL_SECONDS="0.3",
        SAMIZDAT_STANDBY_RETRY_SECONDS="0.5",
    )
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start_scheduler(env, first_log)
    second = None
    try:
        # Waited for, not slept: on a loaded machine starting a scheduler can take seconds.
        _wait_for(lambda: "scheduler active" in first_log.read_text(), 60, "the first becoming active")
        second = _start_scheduler(env, second_log)
        _wait_for(lambda: "standing by" in second_log.read_text(), 60, "the second standing by")
        first.send_signal(signal.SIGKILL)  # dies without releasing anything by itself
        first.wait(10)
        with runtime.Session() as session:
            source = add_source(session, site.url(f"/articles/{seed_names()[1]}.html"), 60).source
            job = enqueue(session, source.id, "request")
            session.commit()
            job_id = job.id

        def done():
            with runtime.Session() as session:
                return session.get(Job, job_id).state == "succeeded"

        _wait_for(done, 30, "the standby capturing the requested job")
    finally:
        if second is not None:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
        if first.poll() is None:
            first.kill()
    output = second_log.read_text()
    assert "standing by" in output, output
    assert "scheduler active" in output


def test_the_scheduler_logs_state_changes_and_not_every_tick(settings, runtime, site):
    env = settings_env(
        settings,
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.3",
        SAMIZDAT_JOBS_POLL_SECONDS="0.2",
        SAMIZDAT_RECONCILE_SECONDS="0.3",
    )
    proc = _start_scheduler(env)
    try:
        with runtime.Session() as session:
            source = add_source(session, site.url(f"/articles/{seed_names()[2]}.html"), 60).source
            session.commit()

        def captured():
            with runtime.Session() as session:
                return session.scalar(select(Capture.complete).where(Capture.source_id == source.id))

        _wait_for(captured, 60, "the capture completing")
        time.sleep(3)  # idle: some forty ticks of the scheduler's jobs go by
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    lines = output.splitlines()
    assert not [line for line in lines if "Running job" in line or "executed successfully" in line], output
    # Start, the one capture, the log's pass and its copies, stop: a handful of lines, not one
    # per tick (some forty ticks went by).
    assert len([line for line in lines if " INFO " in line]) <= 15, output
    # Routine contention (a packs publish holding the log for its own pass) is not an error.
    assert not [line for line in lines if " ERROR " in line], output
    assert any("captured " in line for line in lines), output
