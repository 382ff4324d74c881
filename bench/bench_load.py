"""Load benchmark: 64 concurrent connections for 60 s on each public hot path, and worker memory.

gunicorn with config/gunicorn.conf.py (the production settings) serves the app on SQLite with
10,000 approved fragments and 200 mirrored pages; `wrk -t2 -c64` loads, one after another, the
random-fragment API, the embed frame page and the reader's archive listing, and the peer (a Flask
hello-world under the same gunicorn configuration) just before them. Goals: zero non-2xx/3xx
answers and zero socket errors, and flat worker memory (the mean RSS of the last 10 s within 10 %
of the mean of the first 10 s after a 10 s warm-up, sampled every 2 s).

Run: `.venv/bin/python -m bench bench_load` (BENCH_LOAD_SECONDS=20 for a quicker run). Needs wrk
(`make bench` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert

from bench.bench_embed import Gunicorn, fill, log_everything
from config.settings import Settings
from embed.publish import publish_embed
from mirror.models import Capture, Source
from samizdat import migrate
from samizdat.runtime import build_runtime

SECONDS = int(os.environ.get("BENCH_LOAD_SECONDS", "60"))
CONNECTIONS = 64
FRAGMENTS = 10_000
PAGES = 200
SAMPLE_EVERY = 2.0
WARM_UP = 10.0
FLAT_MARGIN = 0.10


@dataclass
class LoadResult:
    """One wrk run and the workers' memory while it ran."""

    name: str
    rps: float
    p50: float
    p99: float
    non_2xx: int
    socket_errors: int
    rss: list[tuple[float, float]] = field(default_factory=list)  # (seconds in, MiB summed)

    def window(self, start: float, end: float) -> float:
        values = [mib for t, mib in self.rss if start <= t < end]
        return sum(values) / len(values) if values else float("nan")

    @property
    def rss_first(self) -> float:
        return self.window(WARM_UP, WARM_UP + 10)

    @property
    def rss_last(self) -> float:
        return self.window(SECONDS - 10, SECONDS + 1)

    @property
    def flat(self) -> bool:
        return abs(self.rss_last - self.rss_first) <= FLAT_MARGIN * self.rss_first


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def workers_rss_mib(server: Gunicorn) -> float:
    """The resident set of all the server's workers together (VmRSS), in MiB."""
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True, text=True).stdout.split()
    total = 0.0
    for pid in children:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue  # a worker that just exited (it would show as a step in the samples)
        total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024
    return total


def load(name: str, url: str, server: Gunicorn) -> LoadResult:
    """`wrk -t2 -c64 -dSECONDS --latency url`, sampling the workers' RSS meanwhile."""
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    started = time.monotonic()

    def sample():
        while not done.wait(SAMPLE_EVERY):
            samples.append((time.monotonic() - started, workers_rss_mib(server)))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "10s", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    done.set()
    sampler.join()
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return LoadResult(
        name,
        float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        _ms(re.search(r"50%\s+(\S+)", out).group(1)),
        _ms(re.search(r"99%\s+(\S+)", out).group(1)),
        int(non_2xx.group(1)) if non_2xx else 0,
        sum(int(n) for n in sockets.groups()) if sockets else 0,
        samples,
    )


def archive_pages(url: str, count: int) -> None:
    """``count`` mirrored pages (a live source with a stored capture each) for the listing."""
    engine = create_engine(url)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Source), [
            {"id": 100 + i, "url": f"https://example.org/page/{i}", "interval_minutes": 360, "active": True,
             "country": ("VN", "IR", "CN")[i % 3], "collection": ("vietnam", "iran")[i % 2], "created_at": now}
            for i in range(count)
        ])
        conn.execute(insert(Capture), [
            {"id": 100 + i, "source_id": 100 + i, "status": "ok", "url": f"https://example.org/page/{i}",
             "title": f"Blocked page {i}", "sha256": f"{i:064x}", "size": 1000, "fetched_at": now,
             "complete": True, "processed_at": now}
            for i in range(count)
        ])
    engine.dispose()


def run() -> str:
    """Measure and return the Markdown section for docs/benchmarks.md."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does)")
    tmp = Path(tempfile.mkdtemp(prefix="samizdat-bench-load-"))
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    fill(url, FRAGMENTS)
    archive_pages(url, PAGES)
    settings = Settings(data_dir=tmp, database_url=url)
    runtime = build_runtime(settings)
    log_everything(runtime)
    with runtime.Session() as session:
        publish_embed(session, settings)  # the frame page and embed.js are published files
    runtime.dispose()
    env = {"SAMIZDAT_DATABASE_URL": url, "SAMIZDAT_DATA_DIR": str(tmp), "SAMIZDAT_SECRET_KEY": "bench",
           "SAMIZDAT_ARCHIVE_PUBLISH": "0"}
    peer = Gunicorn("bench.hello_app:app", {})
    server = Gunicorn("wsgi:app", env)
    results: list[tuple[LoadResult, LoadResult]] = []
    try:
        paths = (("random API", "/api/fragments/random"), ("frame page", "/embed/frame"),
                 ("archive listing", "/archive"))
        for _, path in paths:
            for _ in range(20):  # each worker builds its pool and caches on its first requests
                requests.get(server.url + path, timeout=60).raise_for_status()
        for name, path in paths:
            hello = load("hello-world", peer.url + "/hello", peer)
            results.append((hello, load(name, server.url + path, server)))
    finally:
        server.stop()
        peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    lines = [
        "## Load: 64 connections on the public hot paths",
        "",
        f"`.venv/bin/python -m bench bench_load`: gunicorn `config/gunicorn.conf.py` (2 workers × 4 threads), "
        f"`wrk -t2 -c{CONNECTIONS} -d{SECONDS}s` per path, SQLite with {FRAGMENTS:,} approved fragments and "
        f"{PAGES} mirrored pages, on this 2-core machine (wrk included); each path right after a "
        "hello-world load of the same length. Workers' RSS (all workers together) sampled every "
        f"{SAMPLE_EVERY:g} s; flat = the last 10 s within {FLAT_MARGIN:.0%} of the first 10 s after a "
        f"{WARM_UP:g} s warm-up.",
        "",
        "| Path | req/s | vs hello-world | p50 / p99 ms | non-2xx/3xx | socket errors | RSS first → last 10 s | flat |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for hello, result in results:
        lines.append(
            f"| {result.name} | {result.rps:,.0f} | **{result.rps / hello.rps:.2f}×** of {hello.rps:,.0f} | "
            f"{result.p50:.1f} / {result.p99:.1f} | {result.non_2xx} | {result.socket_errors} | "
            f"{result.rss_first:.0f} → {result.rss_last:.0f} MiB | {'yes' if result.flat else '**no**'} |"
        )
    failures = [r.name for _, r in results if r.non_2xx or r.socket_errors or not r.flat]
    lines += ["", f"Goals (zero errors, flat memory): {'met' if not failures else 'missed on ' + ', '.join(failures)}."]
    return "\n".join(lines) + "\n"
