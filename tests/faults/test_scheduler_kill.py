"""The scheduler SIGKILLed mid-capture and started again.

The kill lands while a page is being fetched (the site holds its response), on a source already
captured once. After the restart no job is left running once the lease runs out, every due source
is captured, and the retried fetch, finding the same bytes, is recorded as unchanged: the
content-addressed dedup holds across the restart, so no second capture of identical content.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import select

from mirror.jobs import enqueue
from mirror.models import Capture, Job
from mirror.sources import add_source
from samizdat.runtime import build_runtime
from tests.conftest import _truncate_all, make_settings
from tests.services import ROOT, settings_env
from tests.sites import article_html, seed_names

LEASE = 2.0


class HeldSite:
    """Serves articles; /held/<name>.html waits for ``release`` while ``hold`` is set."""

    def __init__(self):
        self.hold = threading.Event()
        self.release = threading.Event()
        self.waiting = threading.Event()  # a held request is in progress
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                name = self.path.split("?", 1)[0].rsplit("/", 1)[1].removesuffix(".html")
                if name not in seed_names():  # the articles' stylesheet and image: not needed here
                    self.send_error(404)
                    return
                if self.path.startswith("/held/") and site.hold.is_set():
                    site.waiting.set()
                    site.release.wait(30)
                body = article_html(name)
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client died while we held it

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def held_site():
    site = HeldSite()
    yield site
    site.close()


def scheduler(settings, log: Path) -> subprocess.Popen:
    """`flask scheduler` as its own process, with a short lease and fast ticks."""
    env = settings_env(
        settings, SAMIZDAT_JOB_LEASE_SECONDS=str(LEASE), SAMIZDAT_JOBS_POLL_SECONDS="0.3",
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5", SAMIZDAT_FETCH_TIMEOUT="30",
        SAMIZDAT_ARCHIVE_PUBLISH="0", SAMIZDAT_STANDBY_RETRY_SECONDS="1",
        # A split claimed by the killed process is taken again after this (300 s by default).
        SAMIZDAT_PROCESSING_LEASE_SECONDS="3",
    )
    return subprocess.Popen([sys.executable, "-m", "flask", "scheduler"], cwd=ROOT, env=env,
                            stdout=open(log, "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115


def wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout} s:\n{log.read_text()[-3000:]}")


def test_a_killed_scheduler_leaves_no_job_running_and_no_duplicate_capture(tmp_path, postgres_url, held_site):
    _truncate_all(postgres_url)
    settings = make_settings(tmp_path, postgres_url, job_lease_seconds=LEASE)
    rt = build_runtime(settings)
    log = tmp_path / "scheduler.log"
    names = seed_names()
    with rt.Session() as session:
        held_id = add_source(session, held_site.url(f"/held/{names[0]}.html"), 60).source.id
        first = [add_source(session, held_site.url(f"/articles/{n}.html"), 60).source.id for n in names[1:]]
        session.commit()

    def captures():
        with rt.Session() as session:
            return list(session.scalars(select(Capture).order_by(Capture.id)))

    def jobs():
        with rt.Session() as session:
            return list(session.scalars(select(Job).order_by(Job.id)))

    proc = scheduler(settings, log)
    try:
        wait_for(lambda: {c.source_id for c in captures() if c.status == "ok"} == {held_id, *first},
                 60, "the first captures", log)
        # A capture of the held page is asked for again (Capture now), and a new source is due.
        held_site.hold.set()
        with rt.Session() as session:
            enqueue(session, held_id, "request", requested_by="ana")
            late = add_source(session, held_site.url(f"/articles/{names[1]}.html?late"), 60).source.id
            session.commit()
        assert held_site.waiting.wait(30), log.read_text()[-3000:]
        running = [j for j in jobs() if j.state == "running" and j.source_id == held_id]
        assert running, [(j.source_id, j.state) for j in jobs()]
        proc.send_signal(signal.SIGKILL)  # mid-fetch: no clean-up at all
        proc.wait(10)
        held_site.release.set()
        assert [j.state for j in jobs() if j.id == running[0].id] == ["running"]  # left behind

        proc = scheduler(settings, log)

        def settled():
            js = jobs()
            return (
                not any(j.state in ("running", "queued") for j in js)
                and any(j.trigger == "retry" and j.finished_at for j in js)
                and late in {c.source_id for c in captures()}
                and all(c.processed_at is not None for c in captures() if c.status == "ok")
            )

        wait_for(settled, 10 * LEASE + 30, "the restarted scheduler settling", log)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        rt.dispose()

    by_id = {j.id: j for j in jobs()}
    assert by_id[running[0].id].state == "interrupted"
    retry = next(j for j in by_id.values() if j.trigger == "retry")
    assert retry.source_id == held_id and retry.state == "unchanged"
    assert not any(j.state == "running" for j in by_id.values())
    # Every due source captured; identical content stored once per source.
    all_captures = captures()
    ok = [c for c in all_captures if c.status == "ok"]
    assert {c.source_id for c in ok} == {held_id, late, *first}
    assert len(ok) == len({(c.source_id, c.sha256) for c in ok}) == 4
    held = [c for c in all_captures if c.source_id == held_id]
    assert [c.status for c in held] == ["ok", "unchanged"]
    assert held[1].same_as_id == held[0].id
