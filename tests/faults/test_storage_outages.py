"""S3, IPFS and both stopped mid-run (a real kill, not a pause) and started again.

Private servers, so killing them disturbs no other test: moto's S3 server restarts on its old port
with nothing (it keeps data in memory), js-ipfs restarts on its repository (kept on disk). After
the restart the verification sweep and reconcile must put every replica back, and each object
read back from the restarted server must have the sha256 the capture and its manifest record.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time

import boto3
import ipfshttpclient
import pytest
from sqlalchemy import select

from mirror.models import Capture, CapturePart, Replica
from mirror.pipeline import capture_source, run_sources
from mirror.replicas import reconcile, verify_replicas
from mirror.sources import add_source
from samizdat.app import create_app
from samizdat.runtime import build_runtime
from tests import services
from tests.conftest import make_settings
from tests.sites import seed_names


@pytest.fixture(scope="module")
def private_s3(aws_credentials):
    """A moto S3 server of this module's own, which its tests kill and restart."""
    server = services.start_s3_server()
    yield server
    services.stop_process(server.proc)


@pytest.fixture(scope="module")
def private_ipfs():
    """A js-ipfs daemon of this module's own, which its tests kill and restart."""
    node = services.start_ipfs_node()
    yield node
    services.stop_ipfs_node(node)


def kill(proc) -> None:
    """SIGKILL a service's process group and reap it: no clean shutdown, no flush."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


@pytest.fixture
def outage(tmp_path, sqlite_url, private_s3, private_ipfs, bucket):
    """(runtime, settings) with both private back-ends on, short timeouts and cooldowns."""
    settings = make_settings(
        tmp_path, sqlite_url, s3_endpoint_url=private_s3.endpoint_url, s3_bucket=bucket,
        ipfs_api=private_ipfs.api_multiaddr, s3_timeout=1.0, ipfs_timeout=2.0,
        backend_cooldown_seconds=0.5, replica_retry_seconds=0.01,
        capture_concurrency=1,  # one page after another, so the kill lands between two of them
    )
    rt = build_runtime(settings)
    yield rt, settings
    rt.dispose()
    # Whatever the test did, the next one finds both servers up.
    if private_s3.proc.poll() is not None:
        private_s3.proc = services.start_s3_server(private_s3.port).proc
    if private_ipfs.proc.poll() is not None:
        services.restart_ipfs_node(private_ipfs)


def stored_objects(rt, settings, private_ipfs) -> dict[tuple[str, str], str]:
    """Every replica read back from the servers themselves, (backend, sha256) → sha256 of the bytes."""
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name="us-east-1")
    ipfs = ipfshttpclient.Client(private_ipfs.api_multiaddr, timeout=10)
    read = {}
    with rt.Session() as session:
        replicas = list(session.scalars(select(Replica)))
    for r in replicas:
        assert r.state == "stored", (r.backend, r.sha256, r.last_error)
        if r.backend == "s3":
            data = s3.get_object(Bucket=settings.s3_bucket, Key=r.locator)["Body"].read()
        else:
            data = ipfs.cat(r.locator)
        read[(r.backend, r.sha256)] = hashlib.sha256(data).hexdigest()
    ipfs.close()
    return read


def assert_every_replica_restored(rt, settings, private_ipfs) -> None:
    """Every part of every capture is in both back-ends with the sha256 its row and manifest say."""
    read = stored_objects(rt, settings, private_ipfs)
    spool = rt.stores["local"]
    with rt.Session() as session:
        captures = list(session.scalars(select(Capture).where(Capture.status == "ok")))
        assert captures
        for capture in captures:
            assert capture.complete and capture.cid, capture.id
            parts = {p.name: p for p in capture.parts}
            manifest = json.loads(spool.get(parts["manifest.json"].sha256))
            listed = {entry["name"]: entry["sha256"] for entry in manifest["parts"]}
            for name, part in parts.items():
                for backend in ("s3", "ipfs"):
                    assert read[(backend, part.sha256)] == part.sha256, (backend, name)
                if name != "manifest.json":
                    assert listed[name] == part.sha256
        # Nothing recorded that no capture refers to, nothing missing.
        shas = set(session.scalars(select(CapturePart.sha256)))
    assert {sha for _, sha in read} == shas


def sources(rt, site, paths: list[str]) -> list[int]:
    """Add the fixture site's ``paths`` as sources; their ids."""
    with rt.Session() as session:
        ids = [add_source(session, site.url(path), 60).source.id for path in paths]
        session.commit()
    return ids


def restore(rt, deadline_seconds: float = 60) -> None:
    """What `flask mirror verify` does, repeated until nothing is left to push (breakers close
    after their cooldown): the sweep finds what a server lost, reconcile pushes it from the spool."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        found = verify_replicas(rt)
        report = reconcile(rt, force=True)
        with rt.Session() as session:
            left = session.scalars(select(Replica).where(Replica.state != "stored")).all()
            incomplete = session.scalars(
                select(Capture.id).where(Capture.status == "ok", Capture.complete.is_(False))
            ).all()
        if not left and not incomplete and not found.lost and not found.unreachable:
            return
        assert time.monotonic() < deadline, (report.errors, [(r.backend, r.last_error) for r in left])
        time.sleep(0.3)


@pytest.mark.parametrize("down", [("s3",), ("ipfs",), ("s3", "ipfs")], ids=["s3", "ipfs", "both"])
def test_a_killed_store_is_refilled_from_the_spool_after_its_restart(outage, site, private_s3, private_ipfs, down):
    rt, settings = outage
    articles = [f"/articles/{name}.html" for name in seed_names()]
    before = sources(rt, site, articles[:2])
    summary = run_sources(rt, before)
    assert sorted(summary.ok) == sorted(before)
    with rt.Session() as session:
        assert all(c.complete for c in session.scalars(select(Capture)))

    during = sources(rt, site, [articles[2], "/vi/windows-1258.html", "/plain.txt", "/doc.pdf"])

    def capture(rt_, source_id):
        # Mid-run: the first page of the run is stored everywhere, the store dies before the next.
        if source_id == during[1]:
            for name in down:
                kill(private_s3.proc if name == "s3" else private_ipfs.proc)
        return capture_source(rt_, source_id)

    summary = run_sources(rt, during, capture=capture)
    # Capturing never waits for a store: every page is spooled, recorded and split.
    assert sorted(summary.ok) == sorted(during) and summary.fragments > 0
    with rt.Session() as session:
        failed = session.scalars(select(Replica).where(Replica.state != "stored")).all()
    assert failed and {r.backend for r in failed} <= set(down)

    with rt.Session() as session:
        stored_in_s3 = set(
            session.scalars(select(Replica.sha256).where(Replica.backend == "s3", Replica.state == "stored"))
        )
    # Back on the same address; moto comes back empty, js-ipfs with its repository.
    if "s3" in down:
        private_s3.proc = services.start_s3_server(private_s3.port).proc
    if "ipfs" in down:
        services.restart_ipfs_node(private_ipfs)
    time.sleep(0.6)  # the breakers' cooldown: the sweep's first call probes and closes them
    found = verify_replicas(rt)
    assert not found.unreachable
    lost = {backend: {sha for b, sha in found.lost if b == backend} for backend in ("s3", "ipfs")}
    # What S3 held before the kill is gone with the server's memory, and only the sweep can know;
    # IPFS kept its repository, so nothing it stored is lost.
    assert lost["s3"] == (stored_in_s3 if "s3" in down else set())
    assert lost["ipfs"] == set()
    restore(rt)
    assert_every_replica_restored(rt, settings, private_ipfs)


def test_mirror_verify_puts_back_what_an_emptied_bucket_lost(outage, site, private_s3, private_ipfs):
    rt, settings = outage
    ids = sources(rt, site, [f"/articles/{name}.html" for name in seed_names()[:2]])
    run_sources(rt, ids)
    # The bucket emptied behind Samizdat's back (a restart without data, an operator's mistake):
    # its rows still say stored.
    kill(private_s3.proc)
    private_s3.proc = services.start_s3_server(private_s3.port).proc
    with rt.Session() as session:
        assert {r.state for r in session.scalars(select(Replica))} == {"stored"}
        s3_count = len(session.scalars(select(Replica).where(Replica.backend == "s3")).all())
    app = create_app(settings)
    try:
        result = app.test_cli_runner().invoke(args=["mirror", "verify"])
    finally:
        app.extensions["samizdat"].dispose()
    assert result.exit_code == 0, result.output
    assert f"{s3_count} lost" in result.output
    assert f"{s3_count} replicas stored" in result.output
    assert_every_replica_restored(rt, settings, private_ipfs)
