"""What the log gate costs the random-fragment API per request: the same pool served with the gate
(today's code: an approval is served only if the published log holds it, one more indexed lookup
and a sha256 of the text per request) and without it (the code just before the gate was merged,
f93254f^1, unpacked from git), each right after a Flask hello-world load under the same gunicorn.

Both servers read one SQLite file: 10,000 approved fragments (bench_embed's fill), every
approval logged first. Needs wrk (`make bench` installs it) and the repository's history.

Run: `.venv/bin/python -m bench bench_random_gate` (BENCH_GATE_FRAGMENTS, BENCH_GATE_ROUNDS,
BENCH_EMBED_DURATION; BENCH_GATE_BEFORE names the commit without the gate).
"""

from __future__ import annotations

import io
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import requests

from bench.bench_embed import DURATION, ROOT, fill, log_everything, wrk
from config.settings import Settings
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests.services import free_port

FRAGMENTS = int(os.environ.get("BENCH_GATE_FRAGMENTS", "10000"))
ROUNDS = int(os.environ.get("BENCH_GATE_ROUNDS", "3"))
BEFORE = os.environ.get("BENCH_GATE_BEFORE", "f93254f^1")


class Server:
    """gunicorn with config/gunicorn.conf.py serving ``app`` from the source tree ``cwd``."""

    def __init__(self, cwd: Path, app: str, env: dict[str, str]):
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {**os.environ, **env, "SAMIZDAT_BIND": self.url.removeprefix("http://"),
               "PYTHONPATH": str(cwd)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(cwd / "config/gunicorn.conf.py"), app],
            cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return
            except requests.RequestException:
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn in {cwd} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def unpack(commit: str, into: Path) -> Path:
    """The source tree of ``commit`` (git archive), without touching the working tree."""
    data = subprocess.run(["git", "archive", commit], cwd=ROOT, capture_output=True,
                          check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def run() -> str:
    """Measure and return a Markdown table."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench does)")
    tmp = Path(tempfile.mkdtemp(prefix="samizdat-bench-gate-"))
    data = tmp / "data"
    data.mkdir()
    url = f"sqlite:///{data / 'samizdat.db'}"
    migrate.upgrade(url)
    fill(url, FRAGMENTS)
    runtime = build_runtime(Settings(data_dir=data, database_url=url))
    log_everything(runtime)
    runtime.dispose()
    env = {"SAMIZDAT_DATABASE_URL": url, "SAMIZDAT_DATA_DIR": str(data),
           "SAMIZDAT_SECRET_KEY": "bench"}
    before = unpack(BEFORE, tmp / "before")
    servers = {"hello": Server(ROOT, "bench.hello_app:app", {}),
               "gated": Server(ROOT, "wsgi:app", env),
               "ungated": Server(before, "wsgi:app", env)}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in
                                                      ("hello/g", "gated", "hello/u", "ungated")}
    try:
        for name in ("gated", "ungated"):
            for _ in range(20):  # each worker builds its pool on its first request
                requests.get(servers[name].url + "/api/fragments/random",
                             timeout=120).raise_for_status()
        for _ in range(ROUNDS):
            results["hello/g"].append(wrk(servers["hello"].url + "/hello"))
            results["gated"].append(wrk(servers["gated"].url + "/api/fragments/random"))
            results["hello/u"].append(wrk(servers["hello"].url + "/hello"))
            results["ungated"].append(wrk(servers["ungated"].url + "/api/fragments/random"))
    finally:
        for server in servers.values():
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    def rps(name: str) -> float:
        return statistics.median(r for r, _ in results[name])

    def p99(name: str) -> float:
        return statistics.median(p for _, p in results[name])

    lines = [
        f"Random API with and without the log gate, {FRAGMENTS:,} logged approvals, SQLite, "
        f"gunicorn config/gunicorn.conf.py, `wrk -t2 -c16 -d{DURATION}`, median of {ROUNDS} "
        "rounds (each load right after a hello-world load)", "",
        "| server | req/s | p99 ms | vs the hello-world just before |",
        "| --- | --- | --- | --- |",
        f"| with the gate (today) | {rps('gated'):,.0f} | {p99('gated'):.1f} | "
        f"{rps('gated') / rps('hello/g'):.2f}× of {rps('hello/g'):,.0f} |",
        f"| without it ({BEFORE}) | {rps('ungated'):,.0f} | {p99('ungated'):.1f} | "
        f"{rps('ungated') / rps('hello/u'):.2f}× of {rps('hello/u'):,.0f} |",
        "", f"gated / ungated: **{rps('gated') / rps('ungated'):.2f}×** req/s; every round "
        f"(req/s): {results}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
