"""/healthz says the process is alive and calls nothing; /readyz checks each dependency within a deadline."""

from __future__ import annotations

import pytest

from samizdat.app import create_app
from tests.conftest import issue_account_token
from tests.ops.helpers import bearer
from tests.services import free_port


@pytest.fixture
def app_without_database(local_settings):
    """The app pointed at a PostgreSQL port where nothing listens."""
    settings = local_settings.replace(
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2"
    )
    application = create_app(settings)
    yield application
    application.extensions["samizdat"].dispose()


def test_healthz_answers_alive_without_the_database_and_without_a_cookie(app_without_database):
    response = app_without_database.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "alive"}
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_503_naming_the_database_when_it_is_gone(local_settings):
    settings = local_settings.replace(
        database_url=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2",
        metrics_token="metrics-secret",
    )
    app = create_app(settings)
    try:
        response = app.test_client().get("/readyz")
        assert response.status_code == 503 and response.get_json() == {"status": "unready"}
        assert "Set-Cookie" not in response.headers
        # An API token cannot be checked without the database: the public view, still no 500.
        with_token = app.test_client().get("/readyz", headers=bearer("smz_whatever"))
        assert with_token.status_code == 503 and with_token.get_json() == {"status": "unready"}
        # The metrics token needs no database: it names the failing part.
        report = app.test_client().get("/readyz", headers=bearer("metrics-secret")).get_json()
        assert report["failing"] == ["database"] and report["checks"]["local"]["ok"] is True
    finally:
        app.extensions["samizdat"].dispose()


def test_readyz_gives_up_on_a_hung_store_at_its_deadline_then_trusts_the_breaker(settings, s3_server):
    app = create_app(settings.replace(ready_timeout_seconds=1.0))
    token = issue_account_token(app, "arch", "archivist")
    client = app.test_client()
    try:
        assert client.get("/readyz").status_code == 200
        s3_server.pause()  # connections hang: the S3 probe alone would wait its own 3 s timeouts
        try:
            hung = client.get("/readyz", headers=bearer(token))
            assert hung.status_code == 503
            report = hung.get_json()
            assert report["failing"] == ["s3"]
            assert report["checks"]["s3"]["detail"] == "no answer within 1 s"
            assert report["checks"]["ipfs"]["ok"] and report["checks"]["database"]["ok"]
            # The failure opened S3's breaker: the next probe fails at once without a call.
            again = client.get("/readyz", headers=bearer(token)).get_json()
            assert again["failing"] == ["s3"] and "circuit breaker" in again["checks"]["s3"]["detail"]
            public = client.get("/readyz")
            assert public.status_code == 503 and public.get_json() == {"status": "unready"}
        finally:
            s3_server.resume()
    finally:
        app.extensions["samizdat"].dispose()


def test_ops_errors_answer_in_json(client):
    response = client.post("/readyz")
    assert response.status_code == 405 and response.is_json
