"""Source writes over HTTP (JSON API and pages): archivists only; deletes keep captures."""

import re

import pytest
from sqlalchemy import select

from mirror.models import Capture, Source
from mirror.pipeline import active_source_ids
from mirror.sources import due_sources
from samizdat.db import utcnow
from tests.conftest import create_account, make_settings


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only: these tests capture nothing."""
    return make_settings(tmp_path, database_url)


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


WRITES = [
    ("post", "/api/sources", {"url": "https://example.org/a"}),
    ("patch", "/api/sources/1", {"active": False}),
    ("delete", "/api/sources/1", None),
]


def add(client, token, **body):
    return client.post("/api/sources", json=body, headers=bearer(token))


@pytest.mark.parametrize("method, path, body", WRITES)
def test_every_source_write_needs_credentials(app, client, archivist_token, method, path, body):
    add(client, archivist_token, url="https://example.org/seed")
    response = getattr(client, method)(path, json=body)
    assert response.status_code == 401
    assert response.get_json()["status"] == 401
    bad = getattr(client, method)(path, json=body, headers=bearer("smz_wrong"))
    assert bad.status_code == 401


@pytest.mark.parametrize("method, path, body", WRITES)
def test_every_source_write_refuses_a_session_without_csrf(
    app, client, login, archivist_token, method, path, body
):
    add(client, archivist_token, url="https://example.org/seed")
    create_account(app, "ana")
    csrf = login(client, "ana")
    refused = getattr(client, method)(path, json=body)
    assert refused.status_code == 403
    assert "CSRF" in refused.get_json()["error"]
    accepted = getattr(client, method)(path, json=body, headers={"X-CSRF-Token": csrf})
    assert accepted.status_code in (200, 201), accepted.get_json()


def test_add_returns_201_then_200_for_the_same_page(client, archivist_token):
    created = add(
        client,
        archivist_token,
        url="HTTPS://Example.ORG/page#x",
        country="vn",
        collection="news",
        every="6h",
    )
    assert created.status_code == 201
    body = created.get_json()
    assert body["url"] == "https://example.org/page"
    assert (body["country"], body["collection"], body["interval_minutes"]) == ("VN", "news", 360)
    again = add(client, archivist_token, url="https://example.org/page")
    assert again.status_code == 200 and again.get_json()["id"] == body["id"]


def test_an_admin_may_write_too(client, admin_token):
    assert add(client, admin_token, url="https://example.org/a").status_code == 201


@pytest.mark.parametrize(
    "body, message",
    [
        ({"url": "ftp://example.org/f"}, "unsupported scheme"),
        ({"url": ""}, "URL is empty"),
        ({}, "url is required"),
        ({"url": "https://example.org", "country": "Vietnam"}, "two-letter"),
        ({"url": "https://example.org", "every": "often"}, "expected e.g. 30m"),
        ({"url": "https://example.org", "collection": 7}, "collection must be a string"),
    ],
)
def test_bad_sources_are_400_with_one_message_and_nothing_stored(
    app, client, archivist_token, body, message
):
    response = add(client, archivist_token, **body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]
    assert client.get("/api/sources").get_json()["total"] == 0


def test_non_json_body_is_400(client, archivist_token):
    response = client.post("/api/sources", data="url=x", headers=bearer(archivist_token))
    assert response.status_code == 400


def test_patch_edits_pauses_and_resumes(client, archivist_token):
    source_id = add(client, archivist_token, url="https://example.org/a").get_json()["id"]
    edited = client.patch(
        f"/api/sources/{source_id}",
        json={"country": "by", "collection": "belarus", "every": "1d"},
        headers=bearer(archivist_token),
    )
    assert edited.status_code == 200
    assert (edited.get_json()["country"], edited.get_json()["interval_minutes"]) == ("BY", 1440)
    paused = client.patch(
        f"/api/sources/{source_id}", json={"active": False}, headers=bearer(archivist_token)
    )
    assert paused.get_json()["active"] is False
    resumed = client.patch(
        f"/api/sources/{source_id}", json={"active": True}, headers=bearer(archivist_token)
    )
    assert resumed.get_json()["active"] is True
    cleared = client.patch(
        f"/api/sources/{source_id}", json={"country": None}, headers=bearer(archivist_token)
    )
    assert cleared.get_json()["country"] is None


@pytest.mark.parametrize(
    "body, message",
    [
        ({"active": "no"}, "active must be true or false"),
        ({"every": "0m"}, "expected e.g."),
        ({"url": "https://elsewhere.example"}, "cannot change url"),
        ({"country": "XYZ"}, "two-letter"),
    ],
)
def test_bad_patches_are_400_and_change_nothing(client, archivist_token, body, message):
    source_id = add(client, archivist_token, url="https://example.org/a", country="VN").get_json()[
        "id"
    ]
    response = client.patch(f"/api/sources/{source_id}", json=body, headers=bearer(archivist_token))
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert client.get("/api/sources").get_json()["items"][0]["country"] == "VN"


def test_unknown_source_is_404(client, archivist_token):
    assert (
        client.patch("/api/sources/99", json={}, headers=bearer(archivist_token)).status_code == 404
    )
    assert client.delete("/api/sources/99", headers=bearer(archivist_token)).status_code == 404


def test_delete_hides_the_source_keeps_captures_and_stops_mirroring(app, client, archivist_token):
    keep_id = add(client, archivist_token, url="https://example.org/keep").get_json()["id"]
    gone_id = add(client, archivist_token, url="https://example.org/gone").get_json()["id"]
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        session.add(
            Capture(
                source_id=gone_id,
                status="failed",
                url="https://example.org/gone",
                error_reason="timeout",
                fetched_at=utcnow(),
            )
        )
        session.commit()
    deleted = client.delete(f"/api/sources/{gone_id}", headers=bearer(archivist_token))
    assert deleted.status_code == 200 and deleted.get_json()["deleted_at"]
    listing = client.get("/api/sources").get_json()
    assert [s["id"] for s in listing["items"]] == [keep_id] and listing["total"] == 1
    assert len(client.get(f"/api/sources/{gone_id}/captures").get_json()["items"]) == 1
    assert active_source_ids(rt) == [keep_id]
    with rt.Session() as session:
        assert [s.id for s in due_sources(session)] == [keep_id]
    assert (
        client.delete(f"/api/sources/{gone_id}", headers=bearer(archivist_token)).status_code == 404
    )
    assert (
        client.patch(
            f"/api/sources/{gone_id}", json={"active": True}, headers=bearer(archivist_token)
        ).status_code
        == 404
    )


def test_adding_a_deleted_page_again_brings_it_back(client, archivist_token):
    source_id = add(client, archivist_token, url="https://example.org/a").get_json()["id"]
    client.delete(f"/api/sources/{source_id}", headers=bearer(archivist_token))
    again = add(client, archivist_token, url="https://example.org/a", every="1h")
    assert again.status_code == 201
    assert again.get_json()["id"] == source_id and again.get_json()["interval_minutes"] == 60
    assert client.get("/api/sources").get_json()["total"] == 1


def test_cli_no_longer_runs_a_deleted_source(app, client, cli, archivist_token):
    source_id = add(client, archivist_token, url="https://example.org/a").get_json()["id"]
    client.delete(f"/api/sources/{source_id}", headers=bearer(archivist_token))
    result = cli.invoke(args=["mirror", "run", str(source_id)])
    assert result.exit_code != 0 and f"no source with id {source_id}" in result.output
    assert "deleted" in cli.invoke(args=["sources", "list"]).output


# --- Archivist pages ---


def form_csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def test_sources_page_sends_visitors_to_login(client):
    response = client.get("/manage/sources")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/manage/sources")
    assert client.post("/manage/sources", data={"url": "https://example.org"}).status_code == 302


def test_sources_page_adds_edits_pauses_and_deletes(app, client, login):
    create_account(app, "ana")
    login(client, "ana")
    page = client.get("/manage/sources")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "<script" not in html and " on" + "click" not in html and "style=" not in html
    csrf = form_csrf(html)

    added = client.post(
        "/manage/sources",
        data={"url": "https://example.org/a", "country": "vn", "every": "2h", "csrf_token": csrf},
    )
    assert added.status_code == 303
    html = client.get("/manage/sources").get_data(as_text=True)
    assert "https://example.org/a" in html and 'value="2h"' in html and "Added" in html

    edited = client.post(
        "/manage/sources/1/edit",
        data={"country": "by", "collection": "c", "every": "1d", "csrf_token": csrf},
    )
    assert edited.status_code == 303
    assert client.post("/manage/sources/1/pause", data={"csrf_token": csrf}).status_code == 303
    source = client.get("/api/sources").get_json()["items"][0]
    assert (source["country"], source["interval_minutes"], source["active"]) == ("BY", 1440, False)
    assert client.post("/manage/sources/1/resume", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/api/sources").get_json()["items"][0]["active"] is True

    asked = client.post("/manage/sources/1/delete", data={"csrf_token": csrf})
    assert asked.status_code == 200 and "Delete 1 source?" in asked.get_data(as_text=True)
    assert client.get("/api/sources").get_json()["total"] == 1
    deleted = client.post("/manage/sources/1/delete", data={"csrf_token": csrf, "confirm": "yes"})
    assert deleted.status_code == 303
    assert client.get("/api/sources").get_json()["total"] == 0
    with app.extensions["samizdat"].Session() as session:
        assert session.scalars(select(Source)).one().deleted_at is not None


def test_sources_page_shows_errors_and_keeps_what_was_typed(app, client, login):
    create_account(app, "ana")
    csrf = login(client, "ana")
    response = client.post(
        "/manage/sources",
        data={"url": "ftp://example.org/x", "collection": "keep me", "csrf_token": csrf},
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "unsupported scheme" in html and 'value="keep me"' in html


def test_sources_page_forms_need_csrf(app, client, login):
    create_account(app, "ana")
    login(client, "ana")
    response = client.post("/manage/sources", data={"url": "https://example.org/a"})
    assert response.status_code == 403
    assert client.get("/api/sources").get_json()["total"] == 0
