"""Login is rate-limited per client and per account name, in memory or in a real Redis."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import redis

from accounts.ratelimit import KEY_PREFIX
from config.settings import SettingsError
from samizdat.app import create_app
from tests.conftest import TEST_PASSWORD, create_account, csrf_of
from tests.services import free_port

LIMIT = "3 per minute"
# A database number of our own on the shared Redis; only this module's keys are removed.
REDIS_URL = "redis://127.0.0.1:6379/9"


def _clean_redis() -> None:
    conn = redis.Redis.from_url(REDIS_URL)
    keys = list(conn.scan_iter(f"*{KEY_PREFIX}*"))
    if keys:
        conn.delete(*keys)
    conn.close()


@pytest.fixture(params=["memory", "redis"])
def limited_settings(request, settings):
    """Settings with a small login limit, counting in memory or in the real Redis."""
    if request.param == "memory":
        yield settings.replace(login_rate_limit=LIMIT)
        return
    _clean_redis()
    yield settings.replace(login_rate_limit=LIMIT, redis_url=REDIS_URL)
    _clean_redis()


@pytest.fixture
def limited_app(limited_settings) -> Iterator:
    """The app under the small limit, with the archivist 'ana'."""
    app = create_app(limited_settings)
    create_account(app, "ana")
    yield app
    app.extensions["samizdat"].dispose()


def client_from(app, address: str):
    """A browser at ``address`` holding the login form's CSRF token."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    client.get("/login")
    return client


def try_login(client, name: str, password: str = "wrong password!"):
    """Post the login form once."""
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": csrf_of(client)}
    )


def assert_limited(response) -> None:
    """429 with a whole number of seconds to wait, and no session started."""
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Set-Cookie" not in response.headers


def test_after_the_limit_even_the_right_password_is_429(limited_app):
    client = client_from(limited_app, "198.51.100.1")
    assert [try_login(client, "ana").status_code for _ in range(3)] == [401, 401, 401]
    assert_limited(try_login(client, "ana", TEST_PASSWORD))
    assert client.get("/api/tokens").status_code == 401


def test_existing_and_unknown_accounts_are_limited_alike(limited_app):
    seen = {}
    for name in ("ana", "nobody"):
        # A new address per try: only the per-account limit can bite.
        statuses = [
            try_login(client_from(limited_app, f"198.51.100.{i}"), name).status_code
            for i in range(10, 14)
        ]
        seen[name] = statuses
    assert seen["ana"] == seen["nobody"] == [401, 401, 401, 429]


def test_one_client_is_limited_across_account_names(limited_app):
    client = client_from(limited_app, "198.51.100.20")
    statuses = [try_login(client, f"guess{i}").status_code for i in range(4)]
    assert statuses == [401, 401, 401, 429]


def test_the_limit_answers_before_the_login_view_runs(limited_app):
    client = client_from(limited_app, "198.51.100.30")
    for _ in range(3):
        try_login(client, "ana")
    # Without a CSRF token the view would answer 400 before checking any password: 429 here
    # means the limiter answered first, so no scrypt ran.
    response = client.post("/login", data={"name": "ana", "password": TEST_PASSWORD})
    assert_limited(response)


def test_other_pages_are_not_limited_and_get_no_limiter_headers(limited_app):
    client = client_from(limited_app, "198.51.100.40")
    for _ in range(4):
        try_login(client, "ana")
    assert client.get("/login").status_code == 200
    for _ in range(5):
        response = limited_app.test_client().get("/api/sources")
        assert response.status_code == 200
        assert "Set-Cookie" not in response.headers
        names = [name.lower() for name in response.headers.keys()]
        assert not any(name.startswith(("x-ratelimit", "retry-after")) for name in names)


def test_limited_logins_log_no_address(limited_app, caplog):
    client = client_from(limited_app, "203.0.113.77")
    with caplog.at_level(logging.DEBUG):
        for _ in range(4):
            try_login(client, "ana")
    assert "203.0.113.77" not in caplog.text


def test_workers_sharing_redis_share_the_count(settings):
    _clean_redis()
    shared = settings.replace(login_rate_limit=LIMIT, redis_url=REDIS_URL)
    first, second = create_app(shared), create_app(shared)  # two workers, one data_dir
    try:
        create_account(first, "ana")
        for _ in range(3):
            try_login(client_from(first, "198.51.100.50"), "ana")
        assert_limited(try_login(client_from(second, "198.51.100.50"), "ana"))
    finally:
        first.extensions["samizdat"].dispose()
        second.extensions["samizdat"].dispose()
        _clean_redis()


def test_unreachable_redis_still_limits_in_memory(settings):
    dead = settings.replace(login_rate_limit=LIMIT, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    app = create_app(dead)
    try:
        create_account(app, "ana")
        client = client_from(app, "198.51.100.60")
        statuses = [try_login(client, "ana").status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
    finally:
        app.extensions["samizdat"].dispose()


def test_a_garbled_limit_is_a_settings_error(settings):
    with pytest.raises(SettingsError, match="LOGIN_RATE_LIMIT"):
        create_app(settings.replace(login_rate_limit="lots"))
