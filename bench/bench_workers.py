"""Worker scale-out benchmark: 200 slow pages captured by 1, 2 and 3 `flask worker` processes.

The same loopback pages as bench_mirror (each answers after 200 ms), one PostgreSQL database per
run, real S3 and IPFS, and the scheduler with ``SCHEDULER_RUNS_JOBS=0`` (it only reconciles).
200 jobs are queued at once; capture throughput is pages per second until every job has
succeeded (fetched, spooled, recorded; the workers split and replicate alongside). The peer is
the ideal for the configured concurrency (pages × delay ÷ (workers × threads)); the ratio
wall/ideal shows what each added worker costs, and the speed-up is against one worker in the
same run. On one machine the workers share its cores, so the speed-up flattens where the CPU,
not the pages' latency, becomes the limit.

Run: `.venv/bin/python -m bench bench_workers` (BENCH_PAGES, BENCH_CONCURRENCY, BENCH_WORKERS=1,2,3).
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
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path

from sqlalchemy import func, select

from bench.bench_mirror import DELAY, _SlowPages, _wait
from config.settings import Settings
from mirror.jobs import enqueue
from mirror.models import Capture, Job
from mirror.sources import add_source
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests import services

PAGES = int(os.environ.get("BENCH_PAGES", "200"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", str(Settings().capture_concurrency)))
WORKER_COUNTS = [int(n) for n in os.environ.get("BENCH_WORKERS", "1,2,3").split(",")]
ROOT = Path(__file__).resolve().parent.parent


def _count(runtime, query) -> int:
    with runtime.Session() as session:
        return session.scalar(query)


def _one_run(workers: int, site_port: int, s3, ipfs) -> dict:
    """Capture the pages with ``workers`` worker processes on a fresh database; return timings."""
    work = Path(tempfile.mkdtemp(prefix="samizdat-bench-workers-"))
    url = services.create_postgres_database(prefix="samizdat_bench")
    migrate.upgrade(url)
    settings = Settings(
        data_dir=work, database_url=url, s3_endpoint_url=s3.endpoint_url,
        s3_bucket=f"bench-{uuid.uuid4().hex[:12]}", ipfs_api=ipfs.api_multiaddr,
        fetch_allow_private=True, capture_concurrency=CONCURRENCY,
    )
    env = services.settings_env(
        settings,
        **services.AWS_TEST_ENV,
        SAMIZDAT_CAPTURE_CONCURRENCY=str(CONCURRENCY),
        SAMIZDAT_SCHEDULER_RUNS_JOBS="0",
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5",
        SAMIZDAT_JOBS_POLL_SECONDS="0.5",
        SAMIZDAT_ARCHIVE_PUBLISH="0",
    )
    runtime = build_runtime(settings)
    logs = [open(work / f"proc{i}.log", "wb") for i in range(workers + 1)]  # noqa: SIM115
    procs = [
        subprocess.Popen([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env,
                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for args, log in zip([["scheduler"]] + [["worker"]] * workers, logs)
    ]
    try:
        _wait(lambda: all(b"ready" in (work / f"proc{i}.log").read_bytes() for i in range(1, workers + 1)), 60)
        with runtime.Session() as session:
            ids = [add_source(session, f"http://127.0.0.1:{site_port}/page/{n}", 360).source.id
                   for n in range(PAGES)]
            session.flush()
            for source_id in ids:
                enqueue(session, source_id, "request")
            session.commit()
        started = time.monotonic()
        succeeded = select(func.count()).select_from(Job).where(Job.state == "succeeded")
        captured = _wait(lambda: _count(runtime, succeeded) >= PAGES, 600)
        complete = select(func.count()).select_from(Capture).where(Capture.complete.is_(True))
        _wait(lambda: _count(runtime, complete) >= PAGES, 900)
        completed = time.monotonic() - started
        with runtime.Session() as session:
            by_worker = session.execute(select(Job.worker, func.count()).group_by(Job.worker)).all()
            failed = session.scalar(select(func.count()).select_from(Job).where(Job.state != "succeeded"))
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for proc in procs:
            proc.wait(60)
        for log in logs:
            log.close()
        runtime.dispose()
        services.drop_postgres_database(url)
        shutil.rmtree(work, ignore_errors=True)
    return {
        "workers": workers, "captured": captured, "completed": completed, "failed": failed,
        "shares": sorted((count for _, count in by_worker), reverse=True),
    }


def run() -> str:
    """Run the benchmark for each worker count and return its Markdown report."""
    s3 = services.start_s3_server()
    ipfs = services.start_ipfs_node()
    site = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPages)
    site.daemon_threads = True
    threading.Thread(target=site.serve_forever, daemon=True).start()
    saved = {k: os.environ.get(k) for k in services.AWS_TEST_ENV}
    os.environ.update(services.AWS_TEST_ENV)
    try:
        runs = [_one_run(n, site.server_address[1], s3, ipfs) for n in WORKER_COUNTS]
    finally:
        site.shutdown()
        services.stop_process(s3.proc)
        services.stop_ipfs_node(ipfs)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    base = runs[0]
    lines = [
        f"### Workers: {PAGES} pages answering after {DELAY * 1000:.0f} ms, "
        f"{CONCURRENCY} capture threads per worker, PostgreSQL, S3 and IPFS",
        "",
        "| workers | captured (all jobs succeeded) | pages/s | ideal (pages × delay ÷ threads) | "
        f"wall / ideal | speed-up vs {base['workers']} worker(s) | … and complete in S3 + IPFS | jobs per worker | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in runs:
        ideal = PAGES * DELAY / (CONCURRENCY * r["workers"])
        lines.append(
            f"| {r['workers']} | {r['captured']:.1f} s | {PAGES / r['captured']:.1f} | {ideal:.1f} s | "
            f"{r['captured'] / ideal:.2f} | {base['captured'] / r['captured']:.2f}× | "
            f"{r['completed']:.1f} s | {' / '.join(map(str, r['shares']))} | {r['failed']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
