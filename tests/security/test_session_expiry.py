"""Sessions end server-side: an absolute lifetime after login and an idle timeout, both read from
timestamps inside the signed cookie, so a copied cookie replayed later is refused too."""

from __future__ import annotations

import time

import pytest

from accounts.auth import SESSION_LOGIN_AT, SESSION_SEEN_AT
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import create_account, csrf_of, make_settings

COOKIE = "samizdat_session"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One SQLite app (12 h lifetime, 60 min idle: the defaults) with the archivist 'ana'."""
    tmp = tmp_path_factory.mktemp("expiry")
    url = f"sqlite:///{tmp / 'expiry.db'}"
    migrate.upgrade(url)
    application = create_app(make_settings(tmp, url))
    create_account(application, "ana")
    yield application
    application.extensions["samizdat"].dispose()


def signed_in(app):
    client = app.test_client()
    client.get("/login")
    client.post("/login", data={"name": "ana", "password": "correct horse battery staple",
                                "csrf_token": csrf_of(client)})
    assert client.get("/manage/sources").status_code == 200
    return client


def age(client, **seconds_ago: int) -> None:
    """Move the session's timestamps into the past (as a cookie kept that long would carry)."""
    with client.session_transaction() as session:
        for key, ago in seconds_ago.items():
            session[key] = int(time.time()) - ago


def assert_sent_to_login(client) -> None:
    page = client.get("/manage/sources")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    assert client.get("/api/tokens").status_code == 401


def test_an_idle_session_ends(app):
    client = signed_in(app)
    age(client, **{SESSION_SEEN_AT: 61 * 60})
    assert_sent_to_login(client)


def test_an_active_session_ends_at_its_absolute_lifetime(app):
    client = signed_in(app)
    age(client, **{SESSION_LOGIN_AT: 12 * 3600 + 60, SESSION_SEEN_AT: 30})
    assert_sent_to_login(client)


def test_a_copied_cookie_replayed_later_is_refused(app):
    client = signed_in(app)
    age(client, **{SESSION_SEEN_AT: 2 * 3600})
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    assert_sent_to_login(thief)


def test_a_session_without_timestamps_is_refused(app):
    client = signed_in(app)
    with client.session_transaction() as session:
        del session[SESSION_LOGIN_AT]
    assert_sent_to_login(client)


def test_use_keeps_a_session_alive_but_public_pages_never_write_it(app):
    client = signed_in(app)
    age(client, **{SESSION_SEEN_AT: 50 * 60})
    for path in ("/", "/archive", "/healthz", "/api/sources"):
        response = client.get(path)
        assert "Set-Cookie" not in response.headers, path
    page = client.get("/manage/sources")
    assert page.status_code == 200 and COOKIE in page.headers.get("Set-Cookie", "")
    with client.session_transaction() as session:
        assert time.time() - session[SESSION_SEEN_AT] < 5
    # Seen a moment ago: the next page does not write the cookie again.
    assert "Set-Cookie" not in client.get("/manage/jobs").headers


def test_an_expired_cookie_on_a_public_page_is_left_alone(app):
    client = signed_in(app)
    assert "detail" in str(client.get("/readyz").get_json())  # a live session sees details
    age(client, **{SESSION_SEEN_AT: 3 * 3600})
    response = client.get("/readyz")
    assert "Set-Cookie" not in response.headers
    assert "detail" not in str(response.get_json())  # treated as a reader
