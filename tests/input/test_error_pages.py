"""Errors: JSON for the API and for clients asking for JSON, a friendly escaped page elsewhere."""

from __future__ import annotations

import pytest
from werkzeug.exceptions import TooManyRequests

from sqlalchemy import select

from accounts.auth import safe_next
from fragments.models import Fragment
from samizdat.app import create_app
from samizdat.text import unstorable_reason
from tests.conftest import TEST_PASSWORD, create_account, csrf_of
from tests.fragments.conftest import capture  # noqa: F401 - a fixture: mirrors a seed article

SECRET = "secret-internal-detail-8d1f"


def assert_friendly_page(response, status: int) -> str:
    """``response`` is an HTML error page for ``status`` with no script; returns its text."""
    assert response.status_code == status
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert html.startswith("<!doctype html>") and "archive.css" in html
    assert "<script" not in html
    assert "script-src" not in response.headers["Content-Security-Policy"]
    return html


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/no/such/page", 404),
        ("GET", "/captures/5/", 404),  # public: readers follow links here
        ("GET", "/captures/5/offline.html", 404),
        ("GET", "/logout", 405),
        ("DELETE", "/manage/sources", 405),
        ("GET", "/captures/" + "9" * 40 + "/", 404),
    ],
)
def test_html_paths_get_a_friendly_error_page(client, method, path, status):
    response = client.open(path, method=method)
    assert_friendly_page(response, status)
    assert "Set-Cookie" not in response.headers  # readers leave no trace, even on errors


def test_a_405_page_keeps_the_allow_header(client):
    response = client.get("/logout")
    assert set(response.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


@pytest.mark.parametrize(
    "method, path, headers, status",
    [
        ("GET", "/api/no/such", {}, 404),
        ("GET", "/api/jobs/" + "9" * 40, {}, 404),
        ("PUT", "/api/sources", {}, 405),
        ("GET", "/no/such/page", {"Accept": "application/json"}, 404),
        ("GET", "/captures/5/", {"Accept": "application/json, text/html;q=0.5"}, 404),
    ],
)
def test_the_api_and_json_clients_keep_json_errors(client, method, path, headers, status):
    response = client.open(path, method=method, headers=headers)
    assert response.status_code == status
    assert response.get_json()["status"] == status and response.get_json()["error"]


def test_error_pages_escape_what_the_request_put_in_them(client):
    response = client.get("/captures/1/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    html = assert_friendly_page(response, 404)
    assert "&lt;script&gt;" in html


@pytest.fixture
def failing_app(settings):
    """The app plus routes that fail the ways a real request can: a bug, and a rate limit."""
    application = create_app(settings)

    def broken():
        raise RuntimeError(SECRET)

    def limited():
        raise TooManyRequests(retry_after=42)

    for prefix in ("", "/api"):
        application.add_url_rule(f"{prefix}/test-broken", f"broken{prefix}", broken)
        application.add_url_rule(f"{prefix}/test-limited", f"limited{prefix}", limited)
    yield application
    application.extensions["samizdat"].dispose()


def test_an_unexpected_exception_is_a_500_page_without_a_traceback(failing_app):
    client = failing_app.test_client()
    html = assert_friendly_page(client.get("/test-broken"), 500)
    assert SECRET not in html and "Traceback" not in html
    api = client.get("/api/test-broken")
    assert api.status_code == 500 and api.get_json()["status"] == 500
    assert SECRET not in api.get_data(as_text=True)


def test_a_429_keeps_retry_after_on_the_page_and_in_the_api(failing_app):
    client = failing_app.test_client()
    assert_friendly_page(page := client.get("/test-limited"), 429)
    assert page.headers["Retry-After"] == "42"
    api = client.get("/api/test-limited")
    assert api.status_code == 429 and api.headers["Retry-After"] == "42"
    assert api.get_json()["status"] == 429


def test_a_body_over_the_limit_is_a_413_page(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1024
    response = client.post("/login", data={"name": "x" * 4096, "password": "y"})
    assert_friendly_page(response, 413)


# --- Redirect targets: ``next`` on the login and review forms. ---

HOSTILE_NEXT = [
    "/manage/jobs\r\nSet-Cookie: evil=1",
    "/manage/jobs\nX-Injected: 1",
    "/manage/jobs\r",
    "/a\x00b",
    "/a\x7fb",
    "/a\x85b",  # NEL, a C1 control
    "/a\ud800b",
    "//[evil.example",  # urlsplit raises on this one
    "//evil.example/",
    "/\\evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT)
def test_safe_next_refuses_control_characters_and_other_sites(target):
    assert safe_next(target, "/home") == "/home"


def test_safe_next_keeps_local_paths_and_percent_encodes_non_ascii():
    local = "/manage/jobs?state=failed&page=2"
    assert safe_next(local, "/home") == local
    encoded = "/manage/fragments?q=vi%E1%BB%87t"
    assert safe_next("/manage/fragments?q=vi\u1ec7t", "/home") == encoded


# NUL and lone surrogates cannot reach the login form (a 400 first; see test_bodies_and_text).
@pytest.mark.parametrize("target", [t for t in HOSTILE_NEXT if unstorable_reason(t) is None])
def test_login_with_a_hostile_next_lands_on_the_default_page(app, client, target):
    create_account(app, "ana")
    page = client.get("/login", query_string={"next": target})
    assert page.status_code == 200
    response = client.post(
        "/login",
        data={"name": "ana", "password": TEST_PASSWORD, "csrf_token": csrf_of(client),
              "next": target},
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/manage/sources"
    assert "evil" not in str(response.headers) and "X-Injected" not in response.headers


@pytest.mark.parametrize(
    "target", ["/x\r\nX-Injected: 1", "//[evil", "/manage/fragments?q=\u1ec7"]
)
def test_review_forms_with_a_hostile_next_redirect_safely(app, client, admin, capture, target):
    capture(0)
    with app.extensions["samizdat"].Session() as session:
        fragment_id = session.scalars(select(Fragment.id)).first()
    for path, form in (
        (f"/manage/fragments/{fragment_id}/approve", {}),
        (f"/manage/fragments/{fragment_id}/edit", {"text": "An edited passage."}),
        ("/manage/fragments/bulk", {"action": "reject", "ids": fragment_id}),
    ):
        form.update(csrf_token=admin["X-CSRF-Token"], next=target)
        response = client.post(path, data=form)
        assert response.status_code == 303, path
        assert "X-Injected" not in response.headers
        safe = ("/manage/fragments", "/manage/fragments?q=%E1%BB%87")
        assert response.headers["Location"] in safe


# --- CSRF tokens are compared whatever characters they hold. ---


@pytest.mark.parametrize("token", ["é", "\u4e2d" * 43, "a\x7fb"])
def test_a_non_ascii_csrf_token_is_refused_not_a_500(app, client, admin, token):
    form = client.post("/logout", data={"csrf_token": token})
    assert_friendly_page(form, 403)
    api = client.post(
        "/api/sources", json={"url": "https://x.example/"},
        headers={"X-CSRF-Token": token.encode("utf-8").decode("latin-1")},
    )
    assert api.status_code == 403 and api.get_json()["status"] == 403
    login = client.post("/login", data={"name": "boss", "password": "x", "csrf_token": token})
    assert login.status_code == 400 and login.mimetype == "text/html"
