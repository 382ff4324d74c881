"""Embed benchmark: the random-fragment API against a Flask hello-world under the same gunicorn,
its tail latency with 1,000 vs 1,000,000 approved fragments, worker memory, and what
`flask embed publish` costs for a million fragments.

Peers in the same run, because this machine is noisy: `GET /api/fragments/random` vs a Flask
hello-world (same gunicorn configuration, same wrk load; goal ≥ 0.9), and p99 at 1,000,000 vs
1,000 fragments (goal ≤ 1.25). Needs wrk (`apt-get install wrk`; `make bench` installs it).

Each random-API load runs right after a hello-world load on the same machine state (the peer's
server stays up throughout), so each ratio compares neighbours in time.

Run: `.venv/bin/python -m bench bench_embed` (BENCH_EMBED_LARGE=100000 for a quicker run;
BENCH_EMBED_PUBLISH_LARGE=0 skips timing the publish of the large set, which takes minutes).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests
from sqlalchemy import create_engine, insert

from config.settings import Settings
from embed.publish import publish_embed
from fragments.models import APPROVED, Fragment
from mirror.models import Capture, CapturePart, Source
from provenance.appender import append_captures
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests.services import free_port

ROOT = Path(__file__).resolve().parent.parent
SMALL = 1_000
LARGE = int(os.environ.get("BENCH_EMBED_LARGE", "1000000"))
DURATION = os.environ.get("BENCH_EMBED_DURATION", "10s")
PUBLISH_LARGE = os.environ.get("BENCH_EMBED_PUBLISH_LARGE", "1") != "0"
WORDS = ("the authorities blocked this report about detained bloggers and the informers who watch "
         "internet cafés across the country while journalists wait for trial in Hà Nội").split()


def fill(url: str, count: int) -> None:
    """``count`` approved fragments in two collections and three languages, inserted in bulk."""
    engine = create_engine(url)
    now = datetime.now(timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Source), [{"id": 1, "url": "https://example.org/report", "interval_minutes": 60,
                                       "active": True, "created_at": now}])
        conn.execute(insert(Capture), [{"id": 1, "source_id": 1, "status": "ok", "url": "https://example.org/report",
                                        "sha256": "a" * 64, "size": 1, "fetched_at": now, "complete": True}])
        # A manifest, so the log appender logs the capture and then the fragments' approvals.
        conn.execute(insert(CapturePart), [{"capture_id": 1, "role": "manifest", "name": "manifest.json",
                                            "sha256": "b" * 64, "size": 1}])
        batch = []
        for i in range(count):
            words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(22 + i % 18)]
            batch.append({
                "id": hashlib.sha256(str(i).encode()).hexdigest()[:32], "capture_id": 1, "position": i,
                "text": f"Fragment {i}: " + " ".join(words) + ".", "language": ("vi", "en", "fa")[i % 3],
                "status": APPROVED, "source_url": "https://example.org/report", "title": "A blocked report",
                "site_name": "example.org", "country": "VN", "collection": ("vietnam", "iran")[i % 2],
                "sha256": "a" * 64, "fetched_at": now, "created_at": now, "reviewed_by": "bench",
                "reviewed_at": now + timedelta(microseconds=i),
            })
            if len(batch) == 20_000:
                conn.execute(insert(Fragment), batch)
                batch = []
        if batch:
            conn.execute(insert(Fragment), batch)
    engine.dispose()


def log_everything(runtime) -> None:
    """Log the filled capture and every approval (packs carry only what the log holds), untimed."""
    while append_captures(runtime, decision_batch=100_000).decisions:
        pass


class Gunicorn:
    """gunicorn with config/gunicorn.conf.py serving ``app`` (module:variable) on a free port."""

    def __init__(self, app: str, env: dict[str, str]):
        self.port = free_port()
        env = {**os.environ, **env, "SAMIZDAT_BIND": f"127.0.0.1:{self.port}"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "config/gunicorn.conf.py"), app],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not start")

    def worker_rss_mib(self) -> float:
        """The largest resident set of the workers (VmRSS), in MiB."""
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True).stdout.split()
        sizes = []
        for pid in children:
            status = Path(f"/proc/{pid}/status").read_text()
            sizes.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)
        return max(sizes)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def wrk(url: str) -> tuple[float, float]:
    """Requests per second and p99 latency (ms) of `wrk -t2 -c16` for DURATION."""
    out = subprocess.run(["wrk", "-t2", "-c16", f"-d{DURATION}", "--latency", url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        raise RuntimeError(f"errors under load: {out}")
    return rps, p99


def measure(count: int, tmp: Path, hello_url: str, publish: bool = True) -> dict:
    """Serve ``count`` fragments and load the random API right after the hello-world peer at
    ``hello_url``; then time a publish of them (unless ``publish`` is false)."""
    data = tmp / f"n{count}"
    data.mkdir()
    url = f"sqlite:///{data / 'samizdat.db'}"
    migrate.upgrade(url)
    started = time.monotonic()
    fill(url, count)
    filled = time.monotonic() - started
    # Served only once logged (the log gate): the API and the packs alike carry logged approvals.
    runtime = build_runtime(Settings(data_dir=data, database_url=url))
    log_everything(runtime)
    env = {"SAMIZDAT_DATABASE_URL": url, "SAMIZDAT_DATA_DIR": str(data), "SAMIZDAT_SECRET_KEY": "bench"}
    server = Gunicorn("wsgi:app", env)
    try:
        for _ in range(20):  # each worker builds its pool on its first request
            requests.get(server.url + "/api/fragments/random", timeout=120).raise_for_status()
        hello_rps, hello_p99 = wrk(hello_url)
        rps, p99 = wrk(server.url + "/api/fragments/random")
        rss = server.worker_rss_mib()
    finally:
        server.stop()
    result = {"count": count, "rps": rps, "p99": p99, "rss": rss, "fill": filled,
              "hello_rps": hello_rps, "hello_p99": hello_p99}
    if not publish:
        runtime.dispose()
        return result
    started = time.monotonic()
    with runtime.Session() as session:
        report = publish_embed(session, runtime.settings)
    result.update(publish_seconds=time.monotonic() - started, publish_bytes=report.packs.bytes_written,
                  largest=report.packs.largest_file, shards=report.packs.shards_written,
                  embed_js=report.embed_js_bytes)
    runtime.dispose()
    return result


def run() -> str:
    """Measure and return the Markdown section for docs/benchmarks.md."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does)")
    tmp = Path(tempfile.mkdtemp(prefix="samizdat-bench-embed-"))
    peer = Gunicorn("bench.hello_app:app", {})  # the peer: a Flask hello-world, same configuration
    try:
        small = measure(SMALL, tmp, peer.url + "/hello")
        large = measure(LARGE, tmp, peer.url + "/hello", publish=PUBLISH_LARGE)
    finally:
        peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    published = large if PUBLISH_LARGE else small
    lines = [
        "## Embed: the random-fragment API and the packs",
        "",
        f"`.venv/bin/python -m bench bench_embed`: gunicorn `config/gunicorn.conf.py` (2 workers × 4 "
        f"threads), `wrk -t2 -c16 -d{DURATION}`, SQLite, on this 2-core machine (wrk included); each "
        "random-API load right after a hello-world load.",
        "",
        "| Measure | Value | Peer / goal |",
        "| --- | --- | --- |",
        f"| random API, {SMALL:,} fragments, req/s | {small['rps']:,.0f} | "
        f"**{small['rps'] / small['hello_rps']:.2f}×** hello-world's {small['hello_rps']:,.0f} "
        "just before (goal ≥ 0.9) |",
        f"| random API, {LARGE:,} fragments, req/s | {large['rps']:,.0f} | "
        f"**{large['rps'] / large['hello_rps']:.2f}×** hello-world's {large['hello_rps']:,.0f} just before |",
        f"| p99 latency, {SMALL:,} → {LARGE:,} fragments | {small['p99']:.1f} → {large['p99']:.1f} ms | "
        f"**{large['p99'] / small['p99']:.2f}×** (goal ≤ 1.25); hello-world p99 "
        f"{small['hello_p99']:.1f} → {large['hello_p99']:.1f} ms |",
        f"| worker RSS at {LARGE:,} fragments | {large['rss']:.0f} MiB | goal ≤ 400 MiB "
        f"({small['rss']:.0f} MiB at {SMALL:,}) |",
        f"| `flask embed publish`, {published['count']:,} fragments | {published['publish_seconds']:.0f} s, "
        f"{published['publish_bytes'] / 2**20:,.1f} MiB in {published['shards']:,} shards | "
        f"{SMALL:,}: {small['publish_seconds']:.2f} s, {small['publish_bytes'] / 1024:,.0f} KiB |",
        f"| largest request of a page view | {max(published['largest'], published['embed_js']) / 1024:.0f} KiB "
        f"(largest pack file; embed.js {published['embed_js'] / 1024:.1f} KiB) | limit 256 KiB |",
    ]
    return "\n".join(lines) + "\n"
