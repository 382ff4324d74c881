"""Ops benchmark: what counting costs the random fragment's fast path.

Peers in the same process and run: the fast path (embed/fastpath.py) called as WSGI with the app's
request counters on, against the same middleware with no counter, in alternating rounds (goal:
ratio ≥ 0.95). The counters run in prometheus_client's multiprocess mode, as under gunicorn, where
each increment writes to a memory-mapped file.

Run: `.venv/bin/python -m bench bench_ops`.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

ROUNDS = 7
CALLS = 20_000


def _environ() -> dict:
    return {"PATH_INFO": "/api/fragments/random", "REQUEST_METHOD": "GET", "QUERY_STRING": ""}


def _rate(app, calls: int) -> float:
    """WSGI calls per second of ``app`` answering the ordinary random request."""
    def start_response(status, headers):
        assert status.startswith("200"), status

    started = time.perf_counter()
    for _ in range(calls):
        app(_environ(), start_response)
    return calls / (time.perf_counter() - started)


def run() -> str:
    """Measure and return a Markdown section for docs/benchmarks.md."""
    metrics_dir = tempfile.mkdtemp(prefix="bench-metrics-")
    # Set before prometheus_client is imported: the multiprocess value class is chosen at import.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    from config.settings import Settings
    from embed.fastpath import RandomFragmentFastPath
    from samizdat import migrate
    from samizdat.app import create_app
    from tests.embed.conftest import add_fragments

    data = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    url = f"sqlite:///{data / 'samizdat.db'}"
    migrate.upgrade(url)
    app = create_app(Settings(data_dir=data, database_url=url))
    add_fragments(app, 1000)
    counted = app.wsgi_app
    bare = RandomFragmentFastPath(app, counted.wsgi_app)  # the same middleware, nothing counted
    _rate(counted, 2000), _rate(bare, 2000)  # warm the pool and the caches
    with_metrics, without = [], []
    for _ in range(ROUNDS):
        with_metrics.append(_rate(counted, CALLS))
        without.append(_rate(bare, CALLS))
    on, off = statistics.median(with_metrics), statistics.median(without)
    return (
        "## Ops: counting on the embed fast path\n\n"
        f"`.venv/bin/python -m bench bench_ops`: {ROUNDS} alternating rounds of {CALLS:,} WSGI calls each.\n\n"
        "| fast path | calls/s (median) |\n| --- | --- |\n"
        f"| with request counters (multiprocess mode) | {on:,.0f} |\n| without | {off:,.0f} |\n\n"
        f"Ratio with/without: **{on / off:.3f}** (goal ≥ 0.95).\n"
    )
