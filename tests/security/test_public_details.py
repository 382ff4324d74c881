"""Readers see whether things work; only archivists and `flask doctor` see URLs, paths, DNS."""

from __future__ import annotations

import pytest

from mirror.leader import LeaderLock
from mirror.pipeline import capture_source
from samizdat.app import create_app
from tests.conftest import issue_account_token


@pytest.fixture
def guarded_app(settings):
    """The app with the fetcher's private-address guard on, as in production."""
    app = create_app(settings.replace(fetch_allow_private=False))
    yield app
    app.extensions["samizdat"].dispose()


def bearer(token: str) -> dict:
    """The Authorization header of an API token."""
    return {"Authorization": f"Bearer {token}"}


def secrets_of(settings) -> list[str]:
    """What the health details reveal: the database URL's host part and the data directory."""
    database = settings.sqlalchemy_url.split("@")[-1].split("///")[-1]
    return [str(settings.data_dir.resolve()), database]


def test_public_readyz_says_ready_but_not_which_back_ends_exist(settings, s3_server, bucket):
    app = create_app(settings.replace(s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket))
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 200
        # S3 is configured here: a reader is not told so (nor, when it fails, which part failed).
        assert response.get_json() == {"status": "ready"}
        body = response.get_data(as_text=True)
        assert "s3" not in body and "configured" not in body
    finally:
        app.extensions["samizdat"].dispose()
    for secret in secrets_of(settings):
        assert secret not in body


def test_archivists_see_readiness_details(guarded_app, settings):
    token = issue_account_token(guarded_app, "arch", "archivist")
    report = guarded_app.test_client().get("/readyz", headers=bearer(token)).get_json()
    assert report["checks"]["local"]["detail"] == str(settings.spool_dir.resolve())
    assert report["checks"]["database"]["detail"]
    assert report["configured"] == {"database": True, "local": True, "s3": False, "ipfs": False}


def test_a_bad_token_on_readyz_gets_the_public_view_not_an_error(guarded_app):
    response = guarded_app.test_client().get("/readyz", headers=bearer("smz_nonsense"))
    assert response.status_code == 200 and response.get_json() == {"status": "ready"}


def test_flask_doctor_still_prints_details(guarded_app, settings):
    runtime = guarded_app.extensions["samizdat"]
    lock = LeaderLock(settings, runtime.engine)  # a scheduler is running
    assert lock.acquire()
    try:
        result = guarded_app.test_cli_runner().invoke(args=["doctor"])
    finally:
        lock.release()
    assert result.exit_code == 0, result.output
    assert str(settings.spool_dir.resolve()) in result.output


def test_public_capture_json_hides_internal_dns_answers(guarded_app):
    token = issue_account_token(guarded_app, "arch", "archivist")
    client = guarded_app.test_client()
    source = {"url": "http://localhost:9/"}
    sid = client.post("/api/sources", json=source, headers=bearer(token)).get_json()["id"]
    outcome = capture_source(guarded_app.extensions["samizdat"], sid)
    assert outcome.status == "failed"

    public = client.get(f"/api/sources/{sid}/captures")
    assert public.status_code == 200
    (capture,) = public.get_json()["items"]
    assert capture["error_reason"] == "blocked_address"
    assert capture["error_message"] is None
    assert "127.0.0.1" not in public.get_data(as_text=True)

    archivist = client.get(f"/api/sources/{sid}/captures", headers=bearer(token)).get_json()
    assert "resolves to" in archivist["items"][0]["error_message"]
    assert "127.0.0.1" in archivist["items"][0]["error_message"]
