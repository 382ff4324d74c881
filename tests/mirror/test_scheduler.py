"""The scheduler as its own process: it captures due sources and stops cleanly on SIGTERM."""

import signal
import subprocess
import sys
import time
from datetime import timedelta

from sqlalchemy import select

from mirror.models import Capture, Source
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
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "scheduler"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        captures = []
        while time.monotonic() < deadline and not captures:
            time.sleep(0.3)
            with runtime.Session() as session:
                captures = list(session.scalars(select(Capture)))
        assert [c.status for c in captures] == ["ok"], "scheduler captured nothing in 30 s"
        # Several more ticks pass: the source is not due again for an hour, so nothing repeats.
        time.sleep(2)
        with runtime.Session() as session:
            assert len(list(session.scalars(select(Capture)))) == 1
            assert session.scalar(select(Source.url)) == url
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode == 0, output
    assert "scheduler stopped" in output
