"""Login, logout, the session cookie, CSRF, user admin and token self-service over HTTP."""

import os
import stat

import pytest

from samizdat.app import create_app
from tests.conftest import TEST_PASSWORD, create_account, csrf_of, issue_account_token


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_login_page_is_a_form_with_a_csrf_token_and_a_strict_csp(client):
    response = client.get("/login")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="csrf_token"' in html and 'type="password"' in html
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert "<script" not in html and "onclick" not in html


def test_session_cookie_is_httponly_and_samesite_lax(app, client):
    create_account(app, "ana")
    client.get("/login")
    response = client.post(
        "/login", data={"name": "ana", "password": TEST_PASSWORD, "csrf_token": csrf_of(client)}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/manage/sources"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("samizdat_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # not configured for HTTPS in tests


def test_secure_cookie_when_configured(settings):
    app = create_app(settings.replace(session_cookie_secure=True))
    create_account(app, "ana")
    client = app.test_client()
    client.get("/login")
    response = client.post(
        "/login", data={"name": "ana", "password": TEST_PASSWORD, "csrf_token": csrf_of(client)}
    )
    assert "Secure" in response.headers["Set-Cookie"]
    app.extensions["samizdat"].dispose()


def test_wrong_password_fails_and_starts_no_session(app, client):
    create_account(app, "ana")
    client.get("/login")
    response = client.post(
        "/login", data={"name": "ana", "password": "wrong password!", "csrf_token": csrf_of(client)}
    )
    assert response.status_code == 401
    assert "Wrong name or password" in response.get_data(as_text=True)
    assert client.get("/api/tokens").status_code == 401


def test_login_without_csrf_token_is_refused(app, client):
    create_account(app, "ana")
    response = client.post("/login", data={"name": "ana", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert client.get("/api/tokens").status_code == 401


def test_login_never_redirects_off_site(app, client):
    create_account(app, "ana")
    client.get("/login")
    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example"):
        response = client.post(
            "/login",
            data={
                "name": "ana",
                "password": TEST_PASSWORD,
                "csrf_token": csrf_of(client),
                "next": target,
            },
        )
        assert response.headers["Location"] == "/manage/sources"
    response = client.post(
        "/login",
        data={
            "name": "ana",
            "password": TEST_PASSWORD,
            "csrf_token": csrf_of(client),
            "next": "/manage/sources?page=2",
        },
    )
    assert response.headers["Location"] == "/manage/sources?page=2"


def test_logout_needs_csrf_and_ends_the_session(app, client, login):
    create_account(app, "ana")
    csrf = login(client, "ana")
    assert client.post("/logout").status_code == 403
    assert client.get("/api/tokens").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    assert client.get("/api/tokens").status_code == 401


def test_disabling_a_user_ends_their_session(app, client, login, cli):
    create_account(app, "ana")
    login(client, "ana")
    assert client.get("/api/tokens").status_code == 200
    cli.invoke(args=["users", "disable", "ana"])
    assert client.get("/api/tokens").status_code == 401


def test_public_endpoints_set_no_cookie_even_for_a_logged_in_archivist(app, login):
    for path in ("/api/fragments/random", "/api/sources", "/healthz", "/readyz"):
        response = app.test_client().get(path)
        assert "Set-Cookie" not in response.headers, path
    create_account(app, "ana")
    client = app.test_client()
    login(client, "ana")
    for path in ("/api/fragments/random", "/api/sources", "/healthz", "/readyz"):
        response = client.get(path)
        assert "Set-Cookie" not in response.headers, path


def test_users_api_is_admin_only(app, client, archivist_token, admin_token):
    assert client.get("/api/users").status_code == 401
    assert client.post("/api/users", json={}).status_code == 401
    denied = client.get("/api/users", headers=bearer(archivist_token))
    assert denied.status_code == 403
    assert denied.get_json() == {"error": "this needs the admin role", "status": 403}
    assert client.post("/api/users", json={}, headers=bearer(archivist_token)).status_code == 403
    listing = client.get("/api/users", headers=bearer(admin_token))
    assert [u["name"] for u in listing.get_json()["items"]] == ["arch", "boss"]
    assert "password_hash" not in listing.get_json()["items"][0]


def test_admin_creates_users_with_one_clear_error_for_bad_input(app, client, admin_token):
    created = client.post(
        "/api/users",
        json={"name": "cleo", "role": "archivist", "password": TEST_PASSWORD},
        headers=bearer(admin_token),
    )
    assert created.status_code == 201 and created.get_json()["name"] == "cleo"
    short = client.post(
        "/api/users", json={"name": "dan", "password": "short"}, headers=bearer(admin_token)
    )
    assert short.status_code == 400 and "at least 10" in short.get_json()["error"]
    again = client.post(
        "/api/users", json={"name": "cleo", "password": TEST_PASSWORD}, headers=bearer(admin_token)
    )
    assert again.status_code == 400 and "already exists" in again.get_json()["error"]


def test_tokens_are_issued_once_and_revoked_by_their_owner(app, client, archivist_token):
    assert client.post("/api/tokens", json={}).status_code == 401
    issued = client.post("/api/tokens", json={"label": "laptop"}, headers=bearer(archivist_token))
    assert issued.status_code == 201
    body = issued.get_json()
    assert body["token"].startswith("smz_") and body["label"] == "laptop"
    assert issued.headers["Cache-Control"] == "no-store"
    listing = client.get("/api/tokens", headers=bearer(body["token"])).get_json()["items"]
    assert all("token" not in t and "token_hash" not in t for t in listing)
    # Another archivist cannot revoke it; its owner can, after which it no longer works.
    eve_token = issue_account_token(app, "eve", "archivist")
    assert client.delete(f"/api/tokens/{body['id']}", headers=bearer(eve_token)).status_code == 404
    assert client.delete(f"/api/tokens/{body['id']}").status_code == 401
    revoked = client.delete(f"/api/tokens/{body['id']}", headers=bearer(archivist_token))
    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    rejected = client.get("/api/tokens", headers=bearer(body["token"]))
    assert rejected.status_code == 401
    assert rejected.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_endpoints_work_with_a_session_and_csrf(app, client, login):
    create_account(app, "ana")
    csrf = login(client, "ana")
    assert client.post("/api/tokens", json={}).status_code == 403  # no CSRF header
    issued = client.post("/api/tokens", json={}, headers={"X-CSRF-Token": csrf})
    assert issued.status_code == 201
    deleted = client.delete(
        f"/api/tokens/{issued.get_json()['id']}", headers={"X-CSRF-Token": csrf}
    )
    assert deleted.status_code == 200


@pytest.mark.parametrize(
    "header", ["Bearer smz_not-a-real-token", "Bearer ", "Basic YW5hOnB3", "smz_bare"]
)
def test_malformed_or_unknown_credentials_are_401(client, header):
    response = client.get("/api/tokens", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["status"] == 401


def test_generated_secret_key_is_kept_private_and_shared(settings):
    assert not settings.secret_key
    first = create_app(settings)
    second = create_app(settings)
    key_file = settings.data_dir / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert first.secret_key == second.secret_key == key_file.read_text().strip()
    third = create_app(settings.replace(secret_key="from-settings"))
    assert third.secret_key == "from-settings"
    for app in (first, second, third):
        app.extensions["samizdat"].dispose()
