"""The curation API and the review page: archivists only, CSRF for sessions, JSON errors."""

import re

import pytest

from fragments.models import APPROVED, PENDING, REJECTED
from tests.conftest import create_account
from tests.fragments.conftest import bearer, served_after_publish, stored


# --- Who may ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("get", "/api/fragments", None),
        ("post", "/api/fragments/ID/approve", None),
        ("post", "/api/fragments/ID/reject", None),
        ("patch", "/api/fragments/ID", {"text": "changed"}),
        ("post", "/api/fragments/bulk", {"action": "approve", "ids": ["ID"]}),
        ("get", "/api/collections", None),
        ("post", "/api/collections", {"name": "x"}),
        ("patch", "/api/collections/x", {"auto_approve": True}),
    ],
)
def test_curation_needs_an_archivist(app, client, pending, method, path, body):
    path = path.replace("ID", pending[0])
    anonymous = getattr(client, method)(path, json=body)
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]
    bad = getattr(client, method)(path, json=body, headers=bearer("not-a-token"))
    assert bad.status_code == 401
    assert {f.status for f in stored(app).values()} == {PENDING}


def test_a_session_write_without_csrf_is_refused(app, client, pending, login):
    create_account(app, "arch")
    login(client, "arch")
    response = client.post(f"/api/fragments/{pending[0]}/approve")
    assert response.status_code == 403 and "CSRF" in response.get_json()["error"]
    assert stored(app)[pending[0]].status == PENDING


def test_a_session_write_with_csrf_header_works(app, client, pending, login):
    create_account(app, "arch")
    csrf = login(client, "arch")
    response = client.post(f"/api/fragments/{pending[0]}/approve", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200
    assert stored(app)[pending[0]].reviewed_by == "arch"


def test_an_admin_may_curate_too(app, client, pending, admin_token):
    response = client.post(f"/api/fragments/{pending[0]}/reject", headers=bearer(admin_token))
    assert response.status_code == 200 and response.get_json()["reviewed_by"] == "boss"


# --- What they do -----------------------------------------------------------------------------------


def test_list_filters_and_paginates(app, client, capture, archivist_token):
    capture(0, collection="vietnam")
    capture(1, collection="belarus")
    everything = stored(app)
    page = client.get("/api/fragments?status=pending&per_page=2", headers=bearer(archivist_token))
    body = page.get_json()
    assert page.status_code == 200 and body["total"] == len(everything) and len(body["items"]) == 2
    assert body["items"][0]["status"] == PENDING and body["items"][0]["tags"] == []
    belarus = client.get("/api/fragments?collection=belarus&per_page=200", headers=bearer(archivist_token))
    assert {i["id"] for i in belarus.get_json()["items"]} == {
        i for i, f in everything.items() if f.collection == "belarus"
    }
    word = next(iter(everything.values())).text.split()[0]
    found = client.get(f"/api/fragments?q={word}", headers=bearer(archivist_token)).get_json()
    assert found["total"] >= 1 and all(word.lower() in i["text"].lower() for i in found["items"])
    bad = client.get("/api/fragments?status=maybe", headers=bearer(archivist_token))
    assert bad.status_code == 400 and "status must be one of" in bad.get_json()["error"]


def test_approve_and_reject_one(app, client, pending, archivist_token):
    approved = client.post(f"/api/fragments/{pending[0]}/approve", headers=bearer(archivist_token))
    assert approved.status_code == 200
    assert approved.get_json()["status"] == APPROVED and approved.get_json()["reviewed_by"] == "arch"
    rejected = client.post(f"/api/fragments/{pending[1]}/reject", headers=bearer(archivist_token))
    assert rejected.get_json()["status"] == REJECTED
    now = stored(app)
    assert now[pending[0]].status == APPROVED and now[pending[1]].status == REJECTED
    assert now[pending[0]].reviewed_at is not None


def test_unknown_fragment_is_a_json_404(client, pending, archivist_token):
    response = client.post("/api/fragments/nope/approve", headers=bearer(archivist_token))
    assert response.status_code == 404
    assert response.get_json()["error"] == "no fragment with id nope"


def test_edit_keeps_the_original_and_changes_tags(app, client, pending, archivist_token):
    original = stored(app)[pending[0]].text
    response = client.patch(
        f"/api/fragments/{pending[0]}",
        json={"text": "  Better words.  ", "add_tags": ["Land Rights", "vn"]},
        headers=bearer(archivist_token),
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["text"] == "Better words." and body["original_text"] == original
    assert body["edited_by"] == "arch" and body["tags"] == ["land-rights", "vn"]
    again = client.patch(
        f"/api/fragments/{pending[0]}", json={"text": "Best words.", "remove_tags": ["vn"]},
        headers=bearer(archivist_token),
    ).get_json()
    assert again["original_text"] == original and again["tags"] == ["land-rights"]
    tagged = client.get("/api/fragments?tag=land-rights", headers=bearer(archivist_token)).get_json()
    assert [i["id"] for i in tagged["items"]] == [pending[0]]


@pytest.mark.parametrize(
    "body, message",
    [
        ({"text": "   "}, "text must not be empty"),
        ({"text": "x" * 1001}, "at most 1000 characters"),
        ({"text": 5}, "text must be a string"),
        ({}, "nothing to change"),
        ({"add_tags": "solo"}, "must be lists"),
    ],
)
def test_bad_edits_are_a_json_400_and_change_nothing(app, client, pending, archivist_token, body, message):
    before = stored(app)[pending[0]].text
    response = client.patch(f"/api/fragments/{pending[0]}", json=body, headers=bearer(archivist_token))
    assert response.status_code == 400 and message in response.get_json()["error"]
    assert stored(app)[pending[0]].text == before


def test_bulk_by_ids_and_by_collection(app, client, capture, pending, archivist_token):
    response = client.post(
        "/api/fragments/bulk", json={"action": "reject", "ids": pending[:2]}, headers=bearer(archivist_token)
    )
    assert response.get_json() == {"status": REJECTED, "changed": 2, "skipped": []}
    capture(1, collection="belarus")
    response = client.post(
        "/api/fragments/bulk", json={"action": "approve", "collection": "vietnam"},
        headers=bearer(archivist_token),
    )
    assert response.status_code == 200 and response.get_json()["changed"] == len(pending) - 2
    now = stored(app)
    assert [now[i].status for i in pending[:2]] == [REJECTED, REJECTED]  # decisions stand
    assert {now[i].status for i in pending[2:]} == {APPROVED}
    assert {f.status for f in now.values() if f.collection == "belarus"} == {PENDING}


@pytest.mark.parametrize(
    "body, status",
    [
        ({"action": "publish", "ids": ["x"]}, 400),
        ({"action": "approve"}, 400),
        ({"action": "approve", "ids": ["x"], "collection": "vietnam"}, 400),
        ({"action": "approve", "ids": "x"}, 400),
        ({"action": "approve", "ids": ["FIRST", "nope"]}, 404),
        ({"action": "approve", "collection": "atlantis"}, 404),
    ],
)
def test_bad_bulk_requests_change_nothing(app, client, pending, archivist_token, body, status):
    if "ids" in body and isinstance(body["ids"], list):
        body = {**body, "ids": [pending[0] if i == "FIRST" else i for i in body["ids"]]}
    response = client.post("/api/fragments/bulk", json=body, headers=bearer(archivist_token))
    assert response.status_code == status and response.get_json()["error"]
    assert {f.status for f in stored(app).values()} == {PENDING}


def test_collections_api(app, client, capture, archivist_token):
    created = client.post(
        "/api/collections", json={"name": "vietnam", "auto_approve": True}, headers=bearer(archivist_token)
    )
    assert created.status_code == 201 and created.get_json()["auto_approve"] is True
    again = client.post("/api/collections", json={"name": "vietnam"}, headers=bearer(archivist_token))
    assert again.status_code == 409
    outcome = capture(0, collection="vietnam")
    listed = client.get("/api/collections", headers=bearer(archivist_token)).get_json()["items"]
    assert listed[0]["name"] == "vietnam"
    assert listed[0]["fragments"] == {"pending": 0, "approved": outcome.new_fragments, "rejected": 0}
    patched = client.patch(
        "/api/collections/vietnam", json={"auto_approve": False}, headers=bearer(archivist_token)
    )
    assert patched.status_code == 200 and patched.get_json()["auto_approve"] is False
    missing = client.patch("/api/collections/atlantis", json={"auto_approve": True}, headers=bearer(archivist_token))
    assert missing.status_code == 404
    bad = client.post("/api/collections", json={"name": " "}, headers=bearer(archivist_token))
    assert bad.status_code == 400


def test_only_approved_fragments_are_served_at_random(app, client, pending, archivist_token):
    assert client.get("/api/fragments/random").status_code == 404
    client.post(f"/api/fragments/{pending[0]}/approve", headers=bearer(archivist_token))
    client.post(f"/api/fragments/{pending[1]}/reject", headers=bearer(archivist_token))
    served_after_publish(app, client)
    served = {client.get("/api/fragments/random").get_json()["id"] for _ in range(10)}
    assert served == {pending[0]}
    body = client.get("/api/fragments/random").get_json()
    assert body["collection"] == "vietnam" and body["country"] == "VN"


# --- The review page --------------------------------------------------------------------------------


def test_review_page_lists_pending_and_loads_only_its_own_script(app, archivist_client, pending):
    client, _ = archivist_client
    response = client.get("/manage/fragments")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for fragment_id in pending:
        assert f'id="fragment-{fragment_id}"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/review.js" defer>']
    # Every other archivist page still runs no script at all.
    assert "script-src" not in client.get("/manage/sources").headers["Content-Security-Policy"]
    assert client.get("/static/review.js").status_code == 200


def test_review_page_needs_a_login(client, pending):
    response = client.get("/manage/fragments")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_fragment_text_is_escaped_on_the_review_page(app, archivist_client, pending):
    client, csrf = archivist_client
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    edited = client.patch(
        f"/api/fragments/{pending[0]}", json={"text": evil}, headers={"X-CSRF-Token": csrf}
    )
    assert edited.status_code == 200
    html = client.get("/manage/fragments").get_data(as_text=True)
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


def test_review_forms_approve_reject_and_edit(app, archivist_client, pending):
    client, csrf = archivist_client
    back = "/manage/fragments?status=pending"
    approved = client.post(
        f"/manage/fragments/{pending[0]}/approve", data={"csrf_token": csrf, "next": back}
    )
    assert approved.status_code == 303 and approved.headers["Location"].endswith(back)
    client.post(f"/manage/fragments/{pending[1]}/reject", data={"csrf_token": csrf})
    edited = client.post(
        f"/manage/fragments/{pending[2]}/edit",
        data={"csrf_token": csrf, "text": "Trimmed by hand."},
    )
    assert edited.status_code == 303
    now = stored(app)
    assert now[pending[0]].status == APPROVED and now[pending[1]].status == REJECTED
    assert now[pending[2]].status == PENDING and now[pending[2]].text == "Trimmed by hand."
    assert now[pending[2]].original_text and now[pending[2]].edited_by == "arch"
    page = client.get("/manage/fragments").get_data(as_text=True)
    assert pending[0] not in page and pending[3] in page


def test_review_forms_need_csrf_and_never_redirect_off_site(app, archivist_client, pending):
    client, csrf = archivist_client
    refused = client.post(f"/manage/fragments/{pending[0]}/approve", data={})
    assert refused.status_code == 403 and stored(app)[pending[0]].status == PENDING
    offsite = client.post(
        f"/manage/fragments/{pending[0]}/approve", data={"csrf_token": csrf, "next": "//evil.example/"}
    )
    assert offsite.headers["Location"].endswith("/manage/fragments")


def test_review_bulk_form_decides_the_shown_page(app, archivist_client, pending):
    client, csrf = archivist_client
    response = client.post(
        "/manage/fragments/bulk", data={"csrf_token": csrf, "action": "approve", "ids": pending[:3]}
    )
    assert response.status_code == 303
    now = stored(app)
    assert {now[i].status for i in pending[:3]} == {APPROVED}
    assert {now[i].status for i in pending[3:]} == {PENDING}
    bad = client.post("/manage/fragments/bulk", data={"csrf_token": csrf, "action": "reject", "ids": ["nope"]})
    assert bad.status_code == 404 and "no fragment with id nope" in bad.get_data(as_text=True)


def test_bad_edit_on_the_page_is_a_friendly_error(app, archivist_client, pending):
    client, csrf = archivist_client
    response = client.post(f"/manage/fragments/{pending[0]}/edit", data={"csrf_token": csrf, "text": " "})
    assert response.status_code == 400 and "text must not be empty" in response.get_data(as_text=True)
    assert stored(app)[pending[0]].original_text is None
