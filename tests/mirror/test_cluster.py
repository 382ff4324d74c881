"""The whole cluster on one machine: two web instances, a scheduler and its standby, three workers.

Every process is real (gunicorn, `flask scheduler`, `flask worker`) and shares one private
PostgreSQL database, one S3 bucket (moto's server) and the data directory, as nodes share a
database, a bucket and a mounted spool in production (docs/deployment.md). IPFS is left off here:
its replication does not depend on which process captured, it is covered by the pipeline's tests,
and the js-ipfs daemon would make 200 captures several times slower.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
import requests
from sqlalchemy import func, select, update

from accounts.users import create_user, issue_token
from mirror.models import Capture, CapturePart, Job, Replica, Source
from samizdat import migrate
from samizdat.runtime import build_runtime
from tests import services
from tests.conftest import TEST_PASSWORD, make_settings

PAGES = 200
WORKERS = 3
AGAIN = 10  # sources made due again after the leader is killed


class _NumberedPages(BaseHTTPRequestHandler):
    """/page/<n>: a distinct article per n, answered after a short pause (a real site is slower)."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        time.sleep(0.02)
        n = self.path.rsplit("/", 1)[-1]
        paragraphs = "".join(
            f"<p>Report {n}, part {i}: the court sentenced the blogger for articles about land "
            f"seizures, and readers abroad kept copies of every one of them.</p>"
            for i in range(6)
        )
        body = f"<html><head><title>Report {n}</title></head><body><article>{paragraphs}</article></body></html>"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def cluster_database():
    """A private PostgreSQL database for the cluster, migrated, dropped afterwards."""
    url = services.create_postgres_database(prefix="samizdat_cluster")
    migrate.upgrade(url)
    yield url
    services.drop_postgres_database(url)


@pytest.fixture
def pages():
    """The numbered pages on loopback."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NumberedPages)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class Cluster:
    """The processes of one cluster, each logging to its own file."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env = env
        self.logs = logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, args: list[str], **extra: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "wb")  # noqa: SIM115 - the process owns it
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=services.ROOT, env={**self.env, **extra},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        self.procs[name] = proc
        return proc

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def wait_for(self, predicate, timeout: float, what: str) -> None:
        """Poll ``predicate``; fail with every log's tail if it does not hold within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        tails = "\n".join(f"--- {name}\n{self.log(name)[-1500:]}" for name in self.procs)
        raise AssertionError(f"{what} did not happen within {timeout} s\n{tails}")

    def stop(self) -> None:
        for proc in self.procs.values():
            services.stop_process(proc, timeout=20)


def test_a_cluster_captures_each_source_once_and_survives_losing_its_leader(
    tmp_path, cluster_database, pages, s3_server, bucket
):
    settings = make_settings(
        tmp_path, cluster_database, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket,
    )
    env = services.settings_env(
        settings,
        **services.AWS_TEST_ENV,
        SAMIZDAT_SCHEDULER_RUNS_JOBS="0",
        SAMIZDAT_SCHEDULER_TICK_SECONDS="0.5",
        SAMIZDAT_JOBS_POLL_SECONDS="0.2",
        SAMIZDAT_STANDBY_RETRY_SECONDS="0.5",
        SAMIZDAT_RECONCILE_SECONDS="1",
        SAMIZDAT_JOB_LEASE_SECONDS="10",
        SAMIZDAT_CAPTURE_CONCURRENCY="4",
        SAMIZDAT_ARCHIVE_PUBLISH="0",  # the static export is another test's subject
        SAMIZDAT_WEB_WORKERS="1",
    )
    runtime = build_runtime(settings)
    cluster = Cluster(env, tmp_path)
    try:
        ports = [services.free_port() for _ in range(2)]
        for i, port in enumerate(ports):
            cluster.start(f"web{i}", ["gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
                          SAMIZDAT_BIND=f"127.0.0.1:{port}")
        leader = cluster.start("scheduler0", ["flask", "scheduler"])
        cluster.wait_for(lambda: "scheduler active" in cluster.log("scheduler0"), 60, "a scheduler leading")
        cluster.start("scheduler1", ["flask", "scheduler"])
        workers = [cluster.start(f"worker{i}", ["flask", "worker"]) for i in range(WORKERS)]
        cluster.wait_for(lambda: "standing by" in cluster.log("scheduler1"), 60, "the second standing by")
        cluster.wait_for(lambda: all("ready" in cluster.log(f"worker{i}") for i in range(WORKERS)),
                         60, "the workers starting")
        webs = [f"http://127.0.0.1:{port}" for port in ports]
        for web in webs:
            services.wait_for_http(f"{web}/healthz", 60)

        # An archivist imports the 200 pages through the first web instance.
        with runtime.Session() as session:
            user = create_user(session, "arch", "archivist", TEST_PASSWORD)
            token = issue_token(session, user, "cluster").plain
            session.commit()
        listing = "".join(f"{pages}/page/{n}\n" for n in range(PAGES)).encode()
        imported = requests.post(
            f"{webs[0]}/api/sources/import", headers={"Authorization": f"Bearer {token}"},
            files={"file": ("pages.txt", listing)}, data={"every": "1h"}, timeout=60,
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["added"] == PAGES

        def count(query) -> int:
            with runtime.Session() as session:
                return session.scalar(query)

        finished = select(func.count()).select_from(Job).where(Job.state == "succeeded")
        complete = select(func.count()).select_from(Capture).where(Capture.complete.is_(True))
        cluster.wait_for(lambda: count(finished) >= PAGES, 240, "200 jobs succeeding")
        cluster.wait_for(lambda: count(complete) >= PAGES, 240, "200 captures complete in S3")

        with runtime.Session() as session:
            jobs = list(session.scalars(select(Job)))
            captures = list(session.scalars(select(Capture)))
            source_ids = list(session.scalars(select(Source.id).order_by(Source.id)))
            shas = set(session.scalars(select(CapturePart.sha256)))
            replicas = session.scalar(select(func.count()).select_from(Replica))
        # Exactly once: one job and one capture per source, nothing left running or queued.
        assert Counter(j.source_id for j in jobs) == Counter(source_ids)
        assert {j.state for j in jobs} == {"succeeded"}
        assert Counter(c.source_id for c in captures) == Counter(source_ids)
        assert all(c.status == "ok" and c.processed_at is not None for c in captures)
        # Each worker did part of the work, and the schedulers none of it.
        worker_pids = {str(w.pid) for w in workers}
        by_worker = Counter(j.worker.rsplit(":", 1)[1] for j in jobs)
        assert set(by_worker) == worker_pids, by_worker
        # Every blob once in the bucket: no capture's bytes were pushed twice.
        s3 = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1")
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])]
        blob_keys = [k for k in keys if k.startswith("blobs/")]
        assert len(blob_keys) == len(set(blob_keys)) == len(shas) == replicas

        # Either web instance answers the same.
        for source_id in (source_ids[0], source_ids[PAGES // 2], source_ids[-1]):
            answers = [requests.get(f"{web}/api/sources/{source_id}/captures", timeout=10) for web in webs]
            assert [a.status_code for a in answers] == [200, 200]
            assert answers[0].json() == answers[1].json()
            assert len(answers[0].json()["items"]) == 1
        first_pages = [requests.get(f"{web}/api/sources?per_page=100", timeout=10).json() for web in webs]
        assert first_pages[0] == first_pages[1] and first_pages[0]["total"] == PAGES

        # The leader dies without a word; the standby takes over and keeps the schedule.
        leader.send_signal(signal.SIGKILL)
        leader.wait(10)
        cluster.wait_for(lambda: "scheduler active" in cluster.log("scheduler1"), 60, "the standby taking over")
        again = source_ids[:AGAIN]
        with runtime.Session() as session:
            # Their last capture is made two hours old: due again under their one-hour interval.
            session.execute(
                update(Capture).where(Capture.source_id.in_(again))
                .values(fetched_at=Capture.fetched_at - func.make_interval(0, 0, 0, 0, 2))
            )
            session.commit()
        rerun = select(func.count()).select_from(Job).where(Job.state == "unchanged")
        cluster.wait_for(lambda: count(rerun) >= AGAIN, 120, "the new leader's schedule running")
        time.sleep(1.5)  # three more ticks: nothing is queued twice
        with runtime.Session() as session:
            later = list(session.scalars(select(Job).where(Job.id > max(j.id for j in jobs))))
            blobs_after = session.scalar(select(func.count()).select_from(Replica))
        assert sorted(j.source_id for j in later) == sorted(again)
        assert {(j.state, j.trigger) for j in later} == {("unchanged", "schedule")}
        assert blobs_after == replicas  # the same bytes were not stored again
    finally:
        cluster.stop()
        runtime.dispose()
    for name in ("scheduler1", *(f"worker{i}" for i in range(WORKERS))):
        assert "Traceback" not in cluster.log(name), cluster.log(name)
