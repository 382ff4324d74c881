"""The app as a whole: readiness, JSON errors, read API, and gunicorn serving wsgi:app."""

import os
import subprocess
import sys

import requests

from samizdat.app import create_app
from tests.services import ROOT, free_port, stop_process, wait_for_http


def test_readyz_reports_every_backend_reachable(client, archivist_token):
    response = client.get("/readyz", headers={"Authorization": f"Bearer {archivist_token}"})
    assert response.status_code == 200
    report = response.get_json()
    assert report["status"] == "ready" and report["failing"] == []
    assert report["configured"] == {"database": True, "local": True, "s3": True, "ipfs": True}
    assert set(report["checks"]) == {"database", "local", "s3", "ipfs"}
    assert all(check["ok"] for check in report["checks"].values())


def test_readyz_is_503_naming_a_backend_that_is_down(local_settings):
    settings = local_settings.replace(
        s3_bucket="down", s3_endpoint_url=f"http://127.0.0.1:{free_port()}", metrics_token="metrics-secret"
    )
    app = create_app(settings)
    # Readers get the status alone (tests/security/test_public_details.py); the metrics token more.
    assert app.test_client().get("/readyz").get_json() == {"status": "unready"}
    response = app.test_client().get("/readyz", headers={"Authorization": "Bearer metrics-secret"})
    assert response.status_code == 503
    report = response.get_json()
    assert report["status"] == "unready" and report["failing"] == ["s3"]
    assert report["checks"]["s3"]["ok"] is False
    assert report["checks"]["database"]["ok"] is True
    assert report["configured"]["ipfs"] is False
    # Liveness asks nothing of the back-ends: the process is alive all the same.
    assert app.test_client().get("/healthz").get_json() == {"status": "alive"}


def test_unknown_api_routes_get_a_json_error(client):
    # Other paths get an HTML page: tests/input/test_error_pages.py.
    response = client.get("/api/no/such/endpoint")
    assert response.status_code == 404
    assert "error" in response.get_json()


def test_sources_api_paginates_and_filters(cli, client):
    for n in range(3):
        cli.invoke(args=["sources", "add", f"https://example.org/{n}", "--country", "vn"])
    cli.invoke(args=["sources", "add", "https://example.com/x", "--collection", "other"])
    page = client.get("/api/sources?per_page=2&page=2").get_json()
    assert page["total"] == 4 and len(page["items"]) == 2
    vn = client.get("/api/sources?country=VN").get_json()
    assert vn["total"] == 3
    assert client.get("/api/sources?page=x").status_code == 400


def test_captures_api_lists_attempts(cli, client, site):
    cli.invoke(args=["sources", "add", site.url("/missing")])
    cli.invoke(args=["mirror", "run", "--all"])
    items = client.get("/api/sources/1/captures").get_json()["items"]
    assert [(c["status"], c["error_reason"], c["http_status"]) for c in items] == [
        ("failed", "http_error", 404)
    ]
    assert client.get("/api/sources/99/captures").status_code == 404


def test_gunicorn_serves_wsgi_app_from_the_environment(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "SAMIZDAT_DATA_DIR": str(tmp_path),
        "SAMIZDAT_BIND": f"127.0.0.1:{port}",
        "SAMIZDAT_WEB_WORKERS": "1",
    }
    subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env, check=True,
        capture_output=True,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/healthz", 30, proc)
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}
        assert requests.get(f"http://127.0.0.1:{port}/api/fragments/random", timeout=5).status_code == 404
    finally:
        stop_process(proc)
    # No access log: the server output must not hold the client's address.
    output = proc.stdout.read().decode()
    assert "GET /healthz" not in output and "GET /readyz" not in output
