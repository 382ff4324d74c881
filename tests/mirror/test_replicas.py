"""Durable replicas: S3 or IPFS (or both) down during a run loses nothing; reconcile repairs it."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from fragments.models import Fragment
from mirror.models import Capture, Replica
from mirror.pipeline import capture_source
from mirror.replicas import reconcile
from mirror.sources import add_source
from mirror.storage import sha256_hex
from samizdat.db import utcnow
from samizdat.runtime import build_runtime
from tests.services import TcpProxy
from tests.sites import article_html, seed_names


@pytest.fixture
def proxies(s3_server, ipfs_node):
    """TCP proxies in front of the S3 server and the IPFS API, to cut and restore them."""
    s3, ipfs = TcpProxy(s3_server.port), TcpProxy(ipfs_node.api_port)
    yield {"s3": s3, "ipfs": ipfs}
    s3.close()
    ipfs.close()


@pytest.fixture
def proxied(settings, proxies):
    """A runtime whose S3 and IPFS traffic goes through the proxies; retries are due at once.

    The back-ends' breakers probe again on the next call, so a restored proxy is used at once.
    """
    rt = build_runtime(
        settings.replace(
            s3_endpoint_url=f"http://127.0.0.1:{proxies['s3'].port}",
            ipfs_api=f"/ip4/127.0.0.1/tcp/{proxies['ipfs'].port}/http",
            ipfs_timeout=5.0,
            replica_retry_seconds=0.01,
            backend_cooldown_seconds=0,
        )
    )
    yield rt
    rt.dispose()


def capture_article(rt, site, index=0):
    with rt.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[index]}.html"), 60).source
        session.commit()
    return capture_source(rt, source.id)


def replica_states(rt) -> dict[tuple[str, str], str]:
    with rt.Session() as session:
        return {(r.sha256, r.backend): r.state for r in session.scalars(select(Replica))}


def assert_everything_verified(rt, capture_id):
    with rt.Session() as session:
        capture = session.get(Capture, capture_id)
        assert capture.complete and capture.cid and capture.s3_key
        for replica in session.scalars(select(Replica)):
            assert replica.state == "stored" and replica.verified_at is not None
            assert replica.last_error is None
        fragment_cids = set(session.scalars(select(Fragment.cid).where(Fragment.capture_id == capture_id)))
        assert fragment_cids == {capture.cid}
        page = next(p for p in capture.parts if p.role == "page")
        cid, key = capture.cid, capture.s3_key
    assert rt.stores["s3"].get(key) == rt.stores["local"].get(page.sha256)
    assert rt.stores["ipfs"].get(f"{cid}/index.html") == rt.stores["local"].get(page.sha256)


@pytest.mark.parametrize("down", [["s3"], ["ipfs"], ["s3", "ipfs"]])
def test_outage_during_a_run_loses_nothing_and_reconcile_repairs_it(proxied, proxies, site, down):
    for name in down:
        proxies[name].cut()
    outcome = capture_article(proxied, site)
    assert outcome.status == "ok" and not outcome.complete
    assert outcome.new_fragments > 0  # fragments come from the spool, whatever the back-ends do
    states = replica_states(proxied)
    assert {state for (_, backend), state in states.items() if backend in down} == {"failed"}
    with proxied.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        assert capture.error_message and all(f"{name}:" in capture.error_message for name in down)
        failed = session.scalars(select(Replica).where(Replica.state == "failed")).first()
        assert failed.last_error and failed.next_attempt_at > failed.created_at
        page_sha = capture.sha256
    assert proxied.stores["local"].get(page_sha) == article_html(seed_names()[0])

    # Still down: reconcile retries, fails again with the reason, and nothing is half-done.
    still = reconcile(proxied, force=True)
    assert still.failed > 0 and still.completed_captures == []

    for name in down:
        proxies[name].restore()
    report = reconcile(proxied, force=True)
    assert report.failed == 0 and report.completed_captures == [outcome.capture_id]
    assert_everything_verified(proxied, outcome.capture_id)


def test_reconcile_waits_for_the_backoff_unless_forced(proxied, proxies, site):
    slow = build_runtime(proxied.settings.replace(replica_retry_seconds=600))
    proxies["s3"].cut()
    outcome = capture_article(slow, site)
    proxies["s3"].restore()
    assert reconcile(slow).stored == 0  # not due for ten minutes
    later = reconcile(slow, now=utcnow() + timedelta(minutes=11))
    assert later.stored > 0 and later.completed_captures == [outcome.capture_id]
    slow.dispose()


def test_a_complete_capture_has_nothing_to_reconcile(runtime, site):
    outcome = capture_article(runtime, site)
    assert outcome.complete
    report = reconcile(runtime, force=True)
    assert (report.stored, report.failed, report.completed_captures) == (0, 0, [])


def test_same_bytes_from_two_sources_are_replicated_once(runtime, site):
    with runtime.Session() as session:
        a = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source
        b = add_source(session, site.url(f"/articles/{seed_names()[0]}.html?copy=1"), 60).source
        session.commit()
    first = capture_source(runtime, a.id)
    second = capture_source(runtime, b.id)
    assert first.uploaded_bytes > 0
    with runtime.Session() as session:
        page_replicas = session.scalars(
            select(Replica).where(Replica.sha256 == session.get(Capture, second.capture_id).sha256)
        ).all()
    assert len(page_replicas) == 2  # one per back-end, shared by both captures


def test_reconcile_leaves_fresh_replicas_to_the_processing_job(runtime, site):
    from mirror.pipeline import process_capture

    with runtime.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60).source
        session.commit()
    outcome = capture_source(runtime, source.id, process=False)
    assert reconcile(runtime).stored == 0  # brand-new: processing's to push, not reconcile's
    later = reconcile(runtime, now=utcnow() + timedelta(minutes=5))
    assert later.stored > 0  # left over for five minutes (a crashed run): reconcile takes them
    assert process_capture(runtime, outcome.capture_id).complete


def test_a_back_end_configured_later_is_filled_from_the_spool(tmp_path, sqlite_url, s3_server, bucket,
                                                               ipfs_node, site):
    from samizdat.app import create_app
    from tests.conftest import make_settings

    s3_only = make_settings(tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket)
    before = create_app(s3_only)
    cli = before.test_cli_runner()
    assert cli.invoke(args=["sources", "add", site.url(f"/articles/{seed_names()[1]}.html")]).exit_code == 0
    assert cli.invoke(args=["mirror", "run", "1"]).exit_code == 0
    before.extensions["samizdat"].dispose()

    # IPFS is turned on afterwards: the earlier capture is not there yet, and doctor says so.
    app = create_app(s3_only.replace(ipfs_api=ipfs_node.api_multiaddr))
    rt = app.extensions["samizdat"]
    cli = app.test_cli_runner()
    try:
        with rt.Session() as session:
            capture = session.scalar(select(Capture))
            assert capture.complete and capture.cid is None
            parts = {p.sha256 for p in capture.parts}
        doctor = cli.invoke(args=["doctor"])
        line = next(ln for ln in doctor.output.splitlines() if ln.startswith("replicas ipfs"))
        assert "1 captures not yet stored there" in line and "warn" in line, doctor.output
        assert "0 captures not yet stored there" in next(
            ln for ln in doctor.output.splitlines() if ln.startswith("replicas s3"))

        reconciled = cli.invoke(args=["mirror", "reconcile"])
        assert reconciled.exit_code == 0, reconciled.output
        assert f"{len(parts)} replicas stored, 0 failed, 1 captures completed" in reconciled.output
        assert f"pushed {len(parts)} of {len(parts)} replicas" in reconciled.output
        assert f"{len(parts)} blobs of earlier captures were queued" in reconciled.output

        ipfs = rt.stores["ipfs"]
        with rt.Session() as session:
            capture = session.scalar(select(Capture))
            assert capture.complete and capture.cid
            stored = {r.sha256: r.locator for r in session.scalars(select(Replica).where(Replica.backend == "ipfs"))}
        assert set(stored) == parts
        for sha, cid in stored.items():
            assert ipfs.exists(cid) and sha256_hex(ipfs.get(cid)) == sha
        doctor = cli.invoke(args=["doctor"])
        line = next(ln for ln in doctor.output.splitlines() if ln.startswith("replicas ipfs"))
        assert "0 captures not yet stored there" in line and "warn" not in line, doctor.output
    finally:
        rt.dispose()
