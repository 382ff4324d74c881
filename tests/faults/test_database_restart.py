"""PostgreSQL crashed and restarted under load, behind gunicorn with the production configuration.

A private cluster (never the machine's server), stopped with `pg_ctl -m immediate` while clients
read the random-fragment API and the archive listing and import sources: meanwhile every answer
is a 503 with Retry-After (JSON on the API, the friendly page on HTML) or a 200, never a 500,
never a hang; once it is back the same workers answer 200 again by themselves, and each import
is in the database whole or not at all.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
import requests
from sqlalchemy import func, select

from accounts.users import create_user, issue_token
from fragments.models import APPROVED, Fragment
from mirror.models import Capture, CapturePart, Source
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests import services
from tests.conftest import log_decisions, make_settings

IMPORT_ROWS = 40  # sources per import request: one transaction, so all of them or none
BOUND = 10.0  # seconds: no request may take longer, database or not


@pytest.fixture(scope="module")
def private_postgres():
    """A PostgreSQL cluster of this module's own, migrated; removed at the end."""
    server = services.start_private_postgres()
    try:
        migrate.upgrade(server.url)
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def served(private_postgres, tmp_path_factory):
    """(gunicorn process, base URL, archivist token) for the app on the private cluster."""
    data = tmp_path_factory.mktemp("pg-restart")
    settings = make_settings(data, private_postgres.url)
    rt = build_runtime(settings)
    now = datetime.now(timezone.utc)
    with rt.Session() as session:
        source = Source(url="https://example.org/report", interval_minutes=60, active=True,
                        country="VN", collection="vietnam")
        session.add(source)
        session.flush()
        capture = Capture(source_id=source.id, status="ok", url=source.url, sha256="a" * 64, size=1,
                          fetched_at=now, complete=True)
        session.add(capture)
        session.flush()
        # A manifest, so a log pass logs the capture and then the approvals: public from then on.
        session.add(CapturePart(capture_id=capture.id, role="manifest", name="manifest.json",
                                sha256="b" * 64, size=1))
        for i in range(20):
            session.add(Fragment(
                id=hashlib.sha256(str(i).encode()).hexdigest()[:32], capture_id=capture.id, position=i,
                text=f"Fragment {i}: the authorities blocked this report about detained bloggers.",
                language="en", status=APPROVED, source_url="https://example.org/report",
                title="A blocked report", site_name="example.org", country="VN", collection="vietnam",
                sha256="a" * 64, fetched_at=now, reviewed_by="tests", reviewed_at=now,
            ))
        user = create_user(session, "arch", "archivist", "correct horse battery staple")
        token = issue_token(session, user, "tests").plain
        session.commit()
    log_decisions(rt)
    rt.dispose()
    port = services.free_port()
    env = services.settings_env(
        settings, SAMIZDAT_BIND=f"127.0.0.1:{port}", SAMIZDAT_WEB_WORKERS="2", SAMIZDAT_SECRET_KEY="tests",
    )
    log = open(data / "gunicorn.log", "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=services.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        services.wait_for_http(base + "/archive", 60, proc)
        yield proc, base, token, data / "gunicorn.log"
    finally:
        services.stop_process(proc)
        log.close()


@dataclass
class Answer:
    """One request's outcome as the client saw it."""

    kind: str
    status: int | None  # None: no HTTP answer at all (refused, reset, timed out)
    content_type: str
    retry_after: str | None
    seconds: float
    batch: str | None = None
    error: str = ""


class Load:
    """Three client threads in a loop: the random API, the archive listing, a source import."""

    def __init__(self, base: str, token: str):
        self.base = base
        self.auth = {"Authorization": f"Bearer {token}"}
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._batches = 0
        self._lock = threading.Lock()
        self.threads = [threading.Thread(target=self._loop, args=(kind,), daemon=True)
                        for kind in ("api", "html", "write")]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self.threads:
            thread.join(BOUND + 5)

    def _request(self, kind: str, http: requests.Session) -> Answer:
        batch = None
        started = time.monotonic()
        try:
            if kind == "api":
                r = http.get(self.base + "/api/fragments/random", timeout=BOUND)
            elif kind == "html":
                r = http.get(self.base + "/archive", headers={"Accept": "text/html"}, timeout=BOUND)
            else:
                with self._lock:
                    self._batches += 1
                    batch = f"batch-{self._batches}"
                urls = "".join(f"https://{batch}.example.org/page/{i}\n" for i in range(IMPORT_ROWS))
                r = http.post(self.base + "/api/sources/import", headers=self.auth, timeout=BOUND,
                              files={"file": ("urls.txt", urls.encode())}, data={"collection": batch})
        except requests.RequestException as exc:
            return Answer(kind, None, "", None, time.monotonic() - started, batch, repr(exc))
        return Answer(kind, r.status_code, r.headers.get("Content-Type", ""), r.headers.get("Retry-After"),
                      time.monotonic() - started, batch, r.text[:300])

    def _loop(self, kind: str) -> None:
        with requests.Session() as http:
            while not self._stop.is_set():
                answer = self._request(kind, http)
                with self._lock:
                    self.answers.append(answer)
                time.sleep(0.05)

    def since(self, index: int) -> list[Answer]:
        with self._lock:
            return list(self.answers[index:])

    def mark(self) -> int:
        with self._lock:
            return len(self.answers)


def worker_pids(proc) -> set[str]:
    out = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout
    return set(out.split())


def wait_until(predicate, timeout: float, what: str, load: Load | None = None):
    """Poll ``predicate``; fail after ``timeout`` seconds with what the clients saw."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    seen = Counter((a.kind, a.status) for a in load.since(0)) if load else ""
    last = load.since(max(0, load.mark() - 3)) if load else ""
    raise AssertionError(f"{what} did not happen within {timeout} s: {seen} {last}")


def test_a_database_restart_is_503_meanwhile_and_heals_by_itself(private_postgres, served):
    proc, base, token, log_path = served
    workers = worker_pids(proc)
    assert len(workers) == 2
    with Load(base, token) as load:
        wait_until(lambda: {a.kind for a in load.since(0) if a.status == 200} == {"api", "html", "write"},
                   30, "every kind of request succeeding", load)
        private_postgres.stop("immediate")
        down = load.mark()
        # Every kind of request meets the outage several times.
        wait_until(lambda: all(sum(1 for a in load.since(down) if a.kind == k and a.status == 503) >= 3
                               for k in ("api", "html", "write")), 30, "503s on every path", load)
        private_postgres.start()
        up = load.mark()
        wait_until(lambda: {a.kind for a in load.since(up) if a.status == 200} == {"api", "html", "write"},
                   30, "every kind of request succeeding again", load)
        healed = load.mark()
        time.sleep(1.0)
    answers = load.since(0)
    after = load.since(healed)
    log = log_path.read_text(errors="replace")

    # Never a 500, never a refused or hung request: 200 (201) or a 503 that says when to retry.
    assert all(a.status is not None for a in answers), [a for a in answers if a.status is None][:3]
    assert {a.status for a in answers} <= {200, 201, 503}, [a for a in answers if a.status not in (200, 201, 503)][:3]
    assert max(a.seconds for a in answers) < BOUND
    outage = [a for a in answers if a.status == 503]
    assert all(a.retry_after and int(a.retry_after) > 0 for a in outage)
    for a in outage:
        if a.kind == "html":
            assert a.content_type.startswith("text/html") and "Traceback" not in a.error
        else:
            assert a.content_type == "application/json" and '"status":503' in a.error.replace(" ", "")
    # Healed by itself: the same workers, and nothing but 200s once it was back.
    assert worker_pids(proc) == workers
    assert {a.status for a in after} == {200}, [a for a in after if a.status != 200][:3]
    assert "Traceback" not in log

    # Every import is whole or absent; every one answered 200 is whole.
    rt = build_runtime(make_settings(log_path.parent, private_postgres.url))
    try:
        with rt.Session() as session:
            counts = dict(session.execute(
                select(Source.collection, func.count()).where(Source.collection.like("batch-%"))
                .group_by(Source.collection)
            ).all())
    finally:
        rt.dispose()
    writes = [a for a in answers if a.kind == "write"]
    assert all(counts.get(a.batch, 0) in (0, IMPORT_ROWS) for a in writes), counts
    assert all(counts.get(a.batch) == IMPORT_ROWS for a in writes if a.status == 200)
    assert any(counts.get(a.batch, 0) == 0 for a in writes if a.status == 503)
