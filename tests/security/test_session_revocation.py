"""A copied session cookie dies with logout, a password change and disabling (session_version)."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_PASSWORD, create_account

COOKIE = "samizdat_session"
NEW_PASSWORD = "a much better passphrase"


@pytest.fixture
def ana(app):
    """The archivist 'ana'."""
    return create_account(app, "ana")


def copy_of_session(app, client):
    """A second browser holding a copy of ``client``'s session cookie (as a thief would)."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def assert_logged_out(client) -> None:
    """The API answers 401 and archivist pages send the visitor to the login page."""
    assert client.get("/api/tokens").status_code == 401
    page = client.get("/manage/sources")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_copied_cookie_stops_working_after_logout(app, client, ana, login):
    csrf = login(client, "ana")
    thief = copy_of_session(app, client)
    assert thief.get("/api/tokens").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
    assert_logged_out(thief)


def test_copied_cookie_stays_dead_after_disable_and_enable(app, client, ana, login, cli):
    login(client, "ana")
    thief = copy_of_session(app, client)
    assert cli.invoke(args=["users", "disable", "ana"]).exit_code == 0
    assert cli.invoke(args=["users", "enable", "ana"]).exit_code == 0
    assert_logged_out(thief)
    assert_logged_out(client)
    login(client, "ana")  # the account itself works again
    assert client.get("/api/tokens").status_code == 200


def test_password_change_ends_every_session_and_the_new_password_works(
    app, client, ana, login, cli
):
    login(client, "ana")
    thief = copy_of_session(app, client)
    result = cli.invoke(
        args=["users", "password", "ana", "--password-stdin"], input=NEW_PASSWORD + "\n"
    )
    assert result.exit_code == 0, result.output
    assert_logged_out(thief)
    assert_logged_out(client)
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    old = client.post(
        "/login", data={"name": "ana", "password": TEST_PASSWORD, "csrf_token": csrf}
    )
    assert old.status_code == 401
    login(client, "ana", NEW_PASSWORD)
    assert client.get("/api/tokens").status_code == 200


def test_password_change_refuses_a_weak_password_and_keeps_sessions(app, client, ana, login, cli):
    login(client, "ana")
    result = cli.invoke(args=["users", "password", "ana", "--password-stdin"], input="short\n")
    assert result.exit_code != 0 and "at least 10 characters" in result.output
    assert client.get("/api/tokens").status_code == 200


def test_logout_with_a_dead_cookie_does_not_end_the_new_session(app, client, ana, login):
    csrf = login(client, "ana")
    thief = copy_of_session(app, client)
    client.post("/logout", data={"csrf_token": csrf})
    login(client, "ana")
    # The thief's old cookie (and its CSRF token) can no longer log the owner out.
    with thief.session_transaction() as sess:
        old_csrf = sess["csrf"]
    thief.post("/logout", data={"csrf_token": old_csrf})
    assert client.get("/api/tokens").status_code == 200
