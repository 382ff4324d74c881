"""Under gunicorn (two workers): /metrics sums every worker's counters; JSON logs hold no reader data.

One server for the module: bound to 127.0.0.2 and called from 127.0.0.1, so the client's address is
one the server never writes for itself.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from config.settings import Settings
from samizdat import migrate
from samizdat.app import create_app
from tests.embed.conftest import add_fragments
from tests.ops.helpers import parse_metrics, total
from tests.services import ROOT, free_port, stop_process, wait_for_http

HOST = "127.0.0.2"
CLIENT = "127.0.0.1"
METRICS_TOKEN = "metrics-" + "t" * 32
USER_AGENT = "ReaderBrowser/9.9 (distinctive-agent-7731)"
QUERY = "q=reader-query-5519"


class Server:
    """The running gunicorn: its URL's parts, its metrics directory and its log file."""

    def __init__(self, port: int, metrics_dir: Path, log: Path, proc: subprocess.Popen):
        self.port, self.metrics_dir, self.log, self.proc = port, metrics_dir, log, proc

    def get(self, path: str, headers: dict | None = None) -> tuple[int, bytes]:
        """GET ``path`` over a new connection from 127.0.0.1."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10, source_address=(CLIENT, 0))
        try:
            conn.request("GET", path, headers={"User-Agent": USER_AGENT, **(headers or {})})
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def scrape(self) -> dict:
        status, body = self.get("/metrics", {"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert status == 200, body
        return parse_metrics(body.decode())

    def requests_per_worker(self) -> dict[str, float]:
        """Each worker's own count of answered requests, read from its file."""
        counts = {}
        for path in self.metrics_dir.glob("counter_*.db"):
            metrics = MultiProcessCollector.merge([str(path)])
            counts[path.stem] = sum(s.value for m in metrics if m.name == "samizdat_http_requests"
                                    for s in m.samples if s.name.endswith("_total"))
        return counts


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gunicorn-ops")
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    app = create_app(Settings(data_dir=tmp, database_url=url))
    add_fragments(app, 3)  # so the fast path answers
    app.extensions["samizdat"].dispose()
    metrics_dir = tmp / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"left by a previous server")  # must be wiped
    port, log = free_port(), tmp / "gunicorn.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SAMIZDAT_")},
        "SAMIZDAT_DATA_DIR": str(tmp), "SAMIZDAT_DATABASE_URL": url,
        "SAMIZDAT_BIND": f"{HOST}:{port}", "SAMIZDAT_WEB_WORKERS": "2",
        "SAMIZDAT_LOG_FORMAT": "json", "SAMIZDAT_METRICS_TOKEN": METRICS_TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_for_http(f"http://{HOST}:{port}/healthz", 30, proc)
        yield Server(port, metrics_dir, log, proc)
    finally:
        stop_process(proc)


def test_a_scrape_sums_the_requests_every_worker_answered(server):
    assert not (server.metrics_dir / "counter_1.db").exists()  # a fresh directory per start
    before = server.scrape()
    paths = ["/healthz", "/api/fragments/random", "/archive", "/no/such/page"] * 20
    answered = 0
    # Both workers must have answered some: concurrent new connections spread over them.
    for _ in range(5):
        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(lambda p: server.get(p)[0], paths))
        answered += len(statuses)
        assert set(statuses) == {200, 404}
        if len([n for n in server.requests_per_worker().values() if n > 0]) >= 2:
            break
    per_worker = server.requests_per_worker()
    assert len([n for n in per_worker.values() if n > 0]) >= 2, per_worker
    after = server.scrape()
    # Every request sent since the first scrape, plus that scrape itself, is in the second.
    grown = total(after, "samizdat_http_requests_total") - total(before, "samizdat_http_requests_total")
    assert grown == answered + 1
    assert total(after, "samizdat_http_requests_total") == sum(server.requests_per_worker().values()) - 1
    fast = ("samizdat_http_requests_total", frozenset(
        {"endpoint_class": "embed", "endpoint": "embed.random_fragment", "status": "200"}.items()))
    assert after[fast] - before.get(fast, 0) == answered / 4
    assert after[("samizdat_captures_total", frozenset({"outcome": "ok"}.items()))] == 1


def test_metrics_refuse_a_scrape_without_the_token(server):
    status, _ = server.get("/metrics")
    assert status == 401


def test_json_log_lines_hold_no_address_agent_or_query(server):
    for path in (f"/archive?{QUERY}", f"/api/fragments/random?{QUERY}", f"/captures/999/?{QUERY}",
                 f"/no/such?{QUERY}", f"/readyz?{QUERY}"):
        server.get(path)
    # A malformed request: gunicorn itself logs these with the sender's address.
    with socket.create_connection((HOST, server.port), source_address=(CLIENT, 0), timeout=5) as raw:
        raw.sendall(b"NOT A REQUEST\r\n\r\n")
        raw.recv(1024)
    stop_process(server.proc)  # flushes and ends the log
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    assert lines, "gunicorn wrote nothing"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= record.keys()
    text = server.log.read_text()
    for secret in (CLIENT, USER_AGENT, "distinctive-agent", QUERY, "reader-query"):
        assert secret not in text, secret
    assert any("Invalid request from ip=[hidden]" in r["message"] for r in records), text
    assert any(r["logger"] == "gunicorn.error" and "Booting worker" in r["message"] for r in records)
