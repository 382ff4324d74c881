"""Mirror benchmark: the scheduler process capturing 200 slow pages into real S3 and IPFS.

A loopback server answers every page after 200 ms. The peer is the ideal for the configured
concurrency (pages × delay ÷ concurrency): the ratio wall/ideal shows the pipeline's overhead
(goal ≤ 1.3×). Then every page is captured again unchanged: bytes uploaded to S3 and IPFS,
counted by TCP proxies in front of them, must be 0. Peak RSS is the scheduler's VmHWM.

Run: `.venv/bin/python -m bench bench_mirror` (or `make bench`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select

from config.settings import Settings
from mirror.jobs import enqueue
from mirror.models import Capture, Job
from mirror.sources import add_source
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests import services

PAGES = int(os.environ.get("BENCH_PAGES", "200"))
DELAY = 0.2
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", str(Settings().capture_concurrency)))
ROOT = Path(__file__).resolve().parent.parent


class _SlowPages(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        time.sleep(DELAY)
        n = self.path.rsplit("/", 1)[-1]
        paragraphs = "".join(
            f"<p>Page {n}, paragraph {i}: the authorities blocked this report about detained "
            f"bloggers and the online informers who watch internet cafés across the country.</p>"
            for i in range(20)
        )
        body = f"<html><head><title>Report {n}</title></head><body><article>{paragraphs}</article></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _wait(predicate, timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"not done within {timeout} s")


def _plain_fetch_seconds(port: int) -> float:
    """The peer: fetch the same pages with bare urllib3 and the same concurrency, storing nothing."""
    import urllib3
    from concurrent.futures import ThreadPoolExecutor

    pool = urllib3.PoolManager(maxsize=CONCURRENCY)
    started = time.monotonic()
    with ThreadPoolExecutor(CONCURRENCY) as workers:
        list(workers.map(lambda n: pool.request("GET", f"http://127.0.0.1:{port}/page/{n}").data, range(PAGES)))
    return time.monotonic() - started


def run() -> str:
    """Run the benchmark and return its Markdown report."""
    work = Path(tempfile.mkdtemp(prefix="samizdat-bench-"))
    s3 = services.start_s3_server()
    ipfs = services.start_ipfs_node()
    s3_proxy, ipfs_proxy = services.TcpProxy(s3.port), services.TcpProxy(ipfs.api_port)
    site = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPages)
    site.daemon_threads = True
    threading.Thread(target=site.serve_forever, daemon=True).start()
    settings = Settings(
        data_dir=work,
        database_url=f"sqlite:///{work / 'bench.db'}",
        s3_endpoint_url=f"http://127.0.0.1:{s3_proxy.port}",
        s3_bucket="bench",
        ipfs_api=f"/ip4/127.0.0.1/tcp/{ipfs_proxy.port}/http",
        fetch_allow_private=True,
        capture_concurrency=CONCURRENCY,
    )
    env = services.settings_env(
        settings,
        SAMIZDAT_CAPTURE_CONCURRENCY=str(CONCURRENCY),
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5",
        SAMIZDAT_JOBS_POLL_SECONDS="0.5",
        **services.AWS_TEST_ENV,
    )
    migrate.upgrade(settings.sqlalchemy_url)
    runtime = build_runtime(settings)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "flask", "scheduler"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        time.sleep(3)  # let the scheduler become active before the sources appear
        with runtime.Session() as session:
            for n in range(PAGES):
                add_source(session, f"http://127.0.0.1:{site.server_address[1]}/page/{n}", 360)
            session.commit()

        def finished(state: str) -> bool:
            # Jobs, not captures: a job is finished only after its capture is recorded.
            with runtime.Session() as session:
                return session.scalar(
                    select(func.count()).select_from(Job).where(Job.state == state)
                ) >= PAGES

        def all_complete() -> bool:
            with runtime.Session() as session:
                return session.scalar(
                    select(func.count()).select_from(Capture).where(
                        Capture.status == "ok", Capture.complete.is_(True)
                    )
                ) >= PAGES

        started = time.monotonic()
        first = _wait(lambda: finished("succeeded"), 300)
        _wait(all_complete, 600)
        completed = time.monotonic() - started
        uploaded_first = s3_proxy.bytes_up + ipfs_proxy.bytes_up
        before = s3_proxy.bytes_up, ipfs_proxy.bytes_up
        with runtime.Session() as session:
            for source_id in range(1, PAGES + 1):
                enqueue(session, source_id, "request")
            session.commit()
        second = _wait(lambda: finished("unchanged"), 300)
        uploaded_again = (s3_proxy.bytes_up - before[0]) + (ipfs_proxy.bytes_up - before[1])
        with runtime.Session() as session:
            failed = session.scalar(select(func.count()).select_from(Job).where(Job.state == "failed"))
            complete = session.scalar(
                select(func.count()).select_from(Capture).where(Capture.complete.is_(True), Capture.status == "ok")
            )
        rss = _peak_rss_mib(scheduler.pid)
        plain = _plain_fetch_seconds(site.server_address[1])
    finally:
        os.killpg(scheduler.pid, signal.SIGTERM)
        scheduler.wait(30)
        runtime.dispose()
        site.shutdown()
        s3_proxy.close()
        ipfs_proxy.close()
        services.stop_process(s3.proc)
        services.stop_ipfs_node(ipfs)
        shutil.rmtree(work, ignore_errors=True)
    ideal = PAGES * DELAY / CONCURRENCY
    return "\n".join(
        [
            f"### Mirror: {PAGES} pages answering after {DELAY * 1000:.0f} ms, concurrency {CONCURRENCY}",
            "",
            "| measure | value |",
            "| --- | --- |",
            f"| first capture: all {PAGES} fetched, spooled and recorded (scheduler process) | {first:.1f} s |",
            f"| pages/s | {PAGES / first:.1f} |",
            f"| ideal for the concurrency ({PAGES} × {DELAY} s ÷ {CONCURRENCY}) | {ideal:.1f} s |",
            f"| ratio wall / ideal (goal ≤ 1.3) | {first / ideal:.2f} |",
            f"| peer: bare urllib3 fetch of the same pages, same concurrency, same run | {plain:.1f} s |",
            f"| ratio wall / peer | {first / plain:.2f} |",
            f"| … and split, in S3 and IPFS, read back and verified (complete) | {completed:.1f} s ({completed / ideal:.2f} × ideal) |",
            f"| captures complete in every back-end | {complete} / {PAGES} |",
            f"| bytes uploaded by the first capture (S3 + IPFS, through proxies) | {uploaded_first:,} |",
            f"| re-capture unchanged, wall | {second:.1f} s |",
            f"| bytes uploaded by the re-capture (goal 0) | {uploaded_again:,} |",
            f"| failed jobs | {failed} |",
            f"| scheduler peak RSS (VmHWM) | {rss:.0f} MiB |",
        ]
    )


if __name__ == "__main__":
    print(run())
