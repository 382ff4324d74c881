"""/metrics: who may read it, that Prometheus can parse it, and that it tells the database's truth."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from archive.static_copy import STATE_FILE
from embed.publish import PUBLISHED_STATE
from fragments.models import APPROVED, PENDING
from mirror.leader import LeaderLock
from mirror.models import Capture, Job, Replica
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.conftest import issue_account_token
from tests.embed.conftest import add_fragments
from tests.ops.helpers import bearer, parse_metrics, total, value


def scrape(app, token: str) -> dict:
    response = app.test_client().get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain")
    assert "Set-Cookie" not in response.headers
    return parse_metrics(response.get_data(as_text=True))


def test_metrics_need_a_metrics_or_archivist_token_and_set_no_cookie(settings):
    app = create_app(settings.replace(metrics_token="m" * 40))
    try:
        client = app.test_client()
        anonymous = client.get("/metrics")
        assert anonymous.status_code == 401 and anonymous.is_json
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert client.get("/metrics", headers=bearer("m" * 39)).status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Basic bTpt"}).status_code == 401
        for token in ("m" * 40, issue_account_token(app, "arch", "archivist"),
                      issue_account_token(app, "boss", "admin")):
            response = client.get("/metrics", headers=bearer(token))
            assert response.status_code == 200
            assert "Set-Cookie" not in response.headers
    finally:
        app.extensions["samizdat"].dispose()


def test_without_a_metrics_token_only_api_tokens_open_metrics(app, archivist_token):
    # An empty SAMIZDAT_METRICS_TOKEN must not let an empty Bearer through.
    assert app.test_client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert app.test_client().get("/metrics", headers=bearer(archivist_token)).status_code == 200


def seed_archive(app) -> None:
    """Captures, replicas, jobs and fragments with known counts and ages."""
    rt = app.extensions["samizdat"]
    add_fragments(app, 3, status=APPROVED)  # source 1, an unprocessed "ok" capture
    add_fragments(app, 2, status=PENDING, collection="other")  # source 2, another
    now = utcnow()
    with rt.Session() as session:
        for status in ("failed", "unchanged"):
            session.add(Capture(source_id=1, status=status, url="https://example.org/vietnam/0", fetched_at=now))
        for backend, state, age in (("s3", "pending", 60), ("s3", "pending", 30), ("s3", "failed", 7200),
                                    ("s3", "stored", 9000), ("ipfs", "pending", 10)):
            session.add(Replica(sha256=f"{backend}{state}{age}".ljust(64, "0"), backend=backend, state=state,
                                size=1, attempts=0, created_at=now - timedelta(seconds=age)))
        session.add(Job(source_id=1, state="queued", trigger="schedule", attempts=0,
                        created_at=now - timedelta(minutes=10)))
        # Running, but its process stopped renewing the lease an hour ago.
        session.add(Job(source_id=2, state="running", trigger="schedule", attempts=1,
                        created_at=now - timedelta(hours=2), started_at=now - timedelta(hours=2),
                        heartbeat_at=now - timedelta(hours=1)))
        for queued, started in ((100, 90), (60, 30), (8000, 7000)):  # the last one is outside the hour
            session.add(Job(source_id=1, state="succeeded", trigger="schedule", attempts=1,
                            created_at=now - timedelta(seconds=queued), started_at=now - timedelta(seconds=started),
                            finished_at=now))
        session.commit()
    public = rt.settings.public_path
    public.mkdir(parents=True, exist_ok=True)
    serial = int((now - timedelta(seconds=120)).timestamp() * 1000)
    (public / PUBLISHED_STATE).write_text(json.dumps({"serial": serial, "key_id": "k"}))
    (public / STATE_FILE).write_text(json.dumps({"exported_at": (now - timedelta(seconds=300)).isoformat()}))


def test_database_metrics_reflect_the_seeded_rows(app, settings, admin_token):
    seed_archive(app)
    lock = LeaderLock(settings, app.extensions["samizdat"].engine)
    assert lock.acquire()
    try:
        samples = scrape(app, admin_token)
    finally:
        lock.release()
    assert value(samples, "samizdat_database_up") == 1
    assert {o: value(samples, "samizdat_captures_total", outcome=o) for o in ("ok", "unchanged", "failed")} == {
        "ok": 2, "unchanged": 1, "failed": 1}
    assert value(samples, "samizdat_fragments", status="approved") == 3
    assert value(samples, "samizdat_fragments", status="pending") == 2
    assert value(samples, "samizdat_fragments", status="rejected") == 0
    assert value(samples, "samizdat_replica_backlog", backend="s3") == 3
    assert value(samples, "samizdat_replica_backlog", backend="ipfs") == 1
    assert value(samples, "samizdat_replicas", backend="s3", state="stored") == 1
    assert 7200 <= value(samples, "samizdat_replica_backlog_oldest_seconds", backend="s3") < 7300
    assert value(samples, "samizdat_processing_backlog") == 2
    assert value(samples, "samizdat_jobs", state="queued") == 1
    assert value(samples, "samizdat_jobs", state="running") == 1
    assert value(samples, "samizdat_jobs", state="succeeded") == 3
    assert value(samples, "samizdat_jobs", state="failed") == 0
    assert 600 <= value(samples, "samizdat_job_queue_oldest_seconds") < 700
    assert value(samples, "samizdat_jobs_stale") == 1
    # Waits of 10 s and 30 s in the last hour; the 1,000 s wait two hours ago is left out.
    assert value(samples, "samizdat_job_wait_jobs") == 2
    assert value(samples, "samizdat_job_wait_seconds", quantile="0.5") == pytest.approx(10, abs=1)
    assert value(samples, "samizdat_job_wait_seconds", quantile="1") == pytest.approx(30, abs=1)
    assert value(samples, "samizdat_scheduler_leader") == 1
    assert 120 <= value(samples, "samizdat_embed_pack_age_seconds") < 200
    assert 300 <= value(samples, "samizdat_static_copy_age_seconds") < 400
    assert value(samples, "samizdat_sources_active") == 2


def test_the_leader_gauge_drops_when_no_scheduler_holds_the_lock(app, admin_token):
    samples = scrape(app, admin_token)
    assert value(samples, "samizdat_scheduler_leader") == 0
    # Never published: no sample rather than a made-up age (alert on absent()).
    assert not [k for k in samples if k[0] == "samizdat_embed_pack_age_seconds"]


def test_requests_are_counted_by_room_and_status_never_by_url(app, admin_token):
    add_fragments(app, 2)
    client = app.test_client()
    before = scrape(app, admin_token)
    assert client.get("/api/fragments/random").status_code == 200  # the fast path
    assert client.get("/api/fragments/random?format=xml").status_code == 400  # the Flask view
    assert client.get("/archive?q=secret-words").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    assert client.get("/healthz").status_code == 200
    after = scrape(app, admin_token)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, frozenset(labels.items())), 0)

    random = "embed.random_fragment"
    assert grew("samizdat_http_requests_total", endpoint_class="embed", endpoint=random, status="200") == 1
    assert grew("samizdat_http_requests_total", endpoint_class="embed", endpoint=random, status="400") == 1
    assert grew("samizdat_http_requests_total", endpoint_class="reader", endpoint="", status="200") == 1
    assert grew("samizdat_http_requests_total", endpoint_class="other", endpoint="", status="404") == 1
    # The first scrape is counted too: 5 requests and 1 scrape between the two readings.
    assert total(after, "samizdat_http_requests_total") - total(before, "samizdat_http_requests_total") == 6
    labels = {dict(k[1]).get("endpoint_class") for k in after if k[0] == "samizdat_http_requests_total"}
    assert labels <= {"reader", "embed", "api", "manage", "ops", "static", "other"}
    text = app.test_client().get("/metrics", headers=bearer(admin_token)).get_data(as_text=True)
    assert "secret-words" not in text and "/no/such" not in text and "127.0.0.1" not in text
