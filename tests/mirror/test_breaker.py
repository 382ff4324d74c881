"""A hung (SIGSTOPped, not refusing) back-end costs one short timeout, not minutes per part."""

import os
import signal
import time

import pytest
from sqlalchemy import select

from mirror.models import Capture, Replica
from mirror.pipeline import run_sources
from mirror.replicas import reconcile
from mirror.sources import add_source
from mirror.storage import BackendDownError, CircuitBreaker
from samizdat.runtime import build_runtime
from tests.conftest import make_settings
from tests.sites import seed_names

TIMEOUT = 1.0  # per S3/IPFS request in these tests
COOLDOWN = 2.0


def pause(proc):
    os.killpg(proc.pid, signal.SIGSTOP)


def resume(proc):
    os.killpg(proc.pid, signal.SIGCONT)


@pytest.fixture(params=["s3", "ipfs"])
def hung(request, tmp_path, database_url, s3_server, ipfs_node, bucket):
    """(runtime, back-end name, its process) with both back-ends on and short timeouts."""
    settings = make_settings(
        tmp_path, database_url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket,
        ipfs_api=ipfs_node.api_multiaddr, s3_timeout=TIMEOUT, ipfs_timeout=TIMEOUT,
        backend_cooldown_seconds=COOLDOWN, replica_retry_seconds=0.01,
    )
    rt = build_runtime(settings)
    proc = s3_server.proc if request.param == "s3" else ipfs_node.proc
    yield rt, request.param, proc
    resume(proc)  # never leave a session-wide service stopped
    rt.dispose()


def test_a_hung_backend_is_skipped_for_the_rest_of_the_run_and_reconcile_catches_up(hung, site):
    rt, backend, proc = hung
    with rt.Session() as session:
        ids = [add_source(session, site.url(f"/articles/{name}.html"), 60).source.id for name in seed_names()[:3]]
        session.commit()
    pause(proc)
    started = time.monotonic()
    summary = run_sources(rt, ids)  # what `flask mirror run` does: capture, split, replicate
    elapsed = time.monotonic() - started
    # Without the breaker: a 60 s read timeout, retried, for each request of each part (minutes).
    assert elapsed < 30, f"the run took {elapsed:.1f} s against a hung {backend}"
    assert sorted(summary.ok) == sorted(ids) and summary.fragments > 0
    assert rt.stores[backend].breaker.is_open
    with rt.Session() as session:
        replicas = list(session.scalars(select(Replica).where(Replica.backend == backend)))
        assert not any(c.complete for c in session.scalars(select(Capture)))
    assert {r.state for r in replicas} == {"failed"}
    # Only the requests in flight when it hung ever reached it; the rest were refused at once.
    assert sum(r.attempts for r in replicas) <= rt.settings.capture_concurrency
    assert any("treated as down" in (r.last_error or "") for r in replicas)

    resume(proc)
    deadline = time.monotonic() + 60
    done: list[int] = []
    while len(done) < len(ids):  # after the cooldown one probe closes the breaker
        assert time.monotonic() < deadline, f"reconcile never caught up: {done}"
        done += reconcile(rt, force=True).completed_captures
        time.sleep(0.2)
    with rt.Session() as session:
        assert all(r.state == "stored" for r in session.scalars(select(Replica)))
    assert not rt.stores[backend].breaker.is_open


def test_an_open_breaker_lets_one_probe_through_after_its_cooldown():
    now = [0.0]
    probes: list[bool] = []
    answers = iter([False, True])

    def probe() -> bool:
        probes.append(True)
        return next(answers)

    breaker = CircuitBreaker("S3", cooldown=10, probe=probe, clock=lambda: now[0])
    breaker.before_call()  # closed: nothing probed
    breaker.trip("read timeout")
    with pytest.raises(BackendDownError):
        breaker.before_call()
    assert probes == []  # within the cooldown: refused without any network call
    now[0] = 11
    with pytest.raises(BackendDownError):
        breaker.before_call()  # the probe fails: open for another cooldown
    with pytest.raises(BackendDownError):
        breaker.before_call()
    assert len(probes) == 1
    now[0] = 22
    breaker.before_call()  # the probe passes: closed
    assert len(probes) == 2 and not breaker.is_open
