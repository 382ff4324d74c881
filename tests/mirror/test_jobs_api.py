"""Triggering captures and reading jobs over HTTP: queued by the web app, run by the scheduler."""

import io

from mirror.jobs import run_queued_jobs
from tests.sites import seed_names


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def add(client, token, url):
    response = client.post("/api/sources", json={"url": url}, headers=bearer(token))
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def test_trigger_queues_a_job_the_scheduler_runs(app, client, site, archivist_token):
    sid = add(client, archivist_token, site.url(f"/articles/{seed_names()[0]}.html"))
    response = client.post(f"/api/sources/{sid}/mirror", headers=bearer(archivist_token))
    assert response.status_code == 202
    job = response.get_json()
    assert job["state"] == "queued" and job["trigger"] == "request"
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    # The web process captured nothing: there is no capture until the scheduler runs the queue.
    assert client.get(f"/api/sources/{sid}/captures").get_json()["items"] == []
    assert run_queued_jobs(app.extensions["samizdat"]) == 1
    done = client.get(f"/api/jobs/{job['id']}", headers=bearer(archivist_token)).get_json()
    assert done["state"] == "succeeded" and done["bytes"] > 0 and done["seconds"] >= 0
    captures = client.get(f"/api/sources/{sid}/captures").get_json()["items"]
    assert captures[0]["id"] == done["capture_id"] and captures[0]["complete"] is True
    parts = {p["role"]: p for p in captures[0]["parts"]}
    assert set(parts) == {"page", "warc", "manifest", "asset", "offline"}
    for part in captures[0]["parts"]:
        assert {b: r["state"] for b, r in part["replicas"].items()} == {
            "local": "stored", "s3": "stored", "ipfs": "stored",
        }
    assert captures[0]["warc_key"] == f"blobs/sha256/{parts['warc']['sha256']}"


def test_triggering_twice_reuses_the_queued_job(client, site, archivist_token):
    sid = add(client, archivist_token, site.url("/empty.html"))
    first = client.post(f"/api/sources/{sid}/mirror", headers=bearer(archivist_token)).get_json()
    second = client.post(f"/api/sources/{sid}/mirror", headers=bearer(archivist_token)).get_json()
    assert first["id"] == second["id"]


def test_trigger_and_jobs_need_an_archivist(client, site, archivist_token):
    sid = add(client, archivist_token, site.url("/empty.html"))
    assert client.post(f"/api/sources/{sid}/mirror").status_code == 401
    assert client.get("/api/jobs").status_code == 401
    assert client.get("/api/jobs/1").status_code == 401
    assert client.post("/api/sources/import").status_code == 401
    assert client.post("/api/sources/999/mirror", headers=bearer(archivist_token)).status_code == 404


def test_failed_job_carries_the_reason(app, client, site, archivist_token):
    sid = add(client, archivist_token, site.url("/status/500"))
    client.post(f"/api/sources/{sid}/mirror", headers=bearer(archivist_token))
    run_queued_jobs(app.extensions["samizdat"])
    jobs = client.get("/api/jobs?state=failed", headers=bearer(archivist_token)).get_json()
    assert jobs["total"] == 1 and "HTTP 500" in jobs["items"][0]["reason"]


def test_upload_import_adds_sources(client, archivist_token):
    data = (
        "url,category_code,category_description,date_added,source,notes\r\n"
        "https://www.rfa.org/vietnamese/,NEWS,News Media,2014-04-15,citizenlab,\r\n"
        "mailto:x@example.org,NEWS,News Media,2014-04-15,citizenlab,\r\n"
    ).encode()
    response = client.post(
        "/api/sources/import",
        data={"file": (io.BytesIO(data), "vn.csv"), "collection": "vietnam"},
        headers=bearer(archivist_token),
        content_type="multipart/form-data",
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["added"] == 1 and body["invalid"][0]["line"] == 3
    listed = client.get("/api/sources?country=VN").get_json()["items"]
    assert listed[0]["category_code"] == "NEWS" and listed[0]["collection"] == "vietnam"


def test_upload_import_refuses_binary(client, archivist_token):
    response = client.post(
        "/api/sources/import",
        data={"file": (io.BytesIO(b"\x00\x01binary"), "vn.csv")},
        headers=bearer(archivist_token),
        content_type="multipart/form-data",
    )
    assert response.status_code == 400 and "binary" in response.get_json()["error"]
