"""API tokens, the public JSON API and search are rate-limited, in memory or in a real Redis;
the random fragment and every other request run no limiter code at all."""

from __future__ import annotations

import pytest
import redis

from accounts.ratelimit import API_KEY_PREFIX
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import issue_account_token, make_settings

LIMIT = "3 per minute"
# A database number of our own on the shared Redis; only this module's keys are removed.
REDIS_URL = "redis://127.0.0.1:6379/9"


def _clean_redis() -> None:
    conn = redis.Redis.from_url(REDIS_URL)
    keys = list(conn.scan_iter(f"*{API_KEY_PREFIX}*"))
    if keys:
        conn.delete(*keys)
    conn.close()


@pytest.fixture(scope="module", params=["memory", "redis"])
def app(request, tmp_path_factory):
    """An app under small limits, counting in memory or in the real Redis, with two tokens."""
    tmp = tmp_path_factory.mktemp(f"api-limit-{request.param}")
    url = f"sqlite:///{tmp / 'limits.db'}"
    migrate.upgrade(url)
    overrides = dict(token_rate_limit=LIMIT, api_rate_limit=LIMIT, search_rate_limit=LIMIT)
    if request.param == "redis":
        _clean_redis()
        overrides["redis_url"] = REDIS_URL
    application = create_app(make_settings(tmp, url, **overrides))
    application.config["tokens"] = [
        issue_account_token(application, name, "archivist") for name in ("ana", "ben")
    ]
    yield application
    application.extensions["samizdat"].dispose()
    if request.param == "redis":
        _clean_redis()


def client_at(app, address: str):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def assert_limited_json(response) -> None:
    assert response.status_code == 429
    assert response.mimetype == "application/json"
    assert response.get_json()["status"] == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert "Set-Cookie" not in response.headers


def test_each_token_has_its_own_budget(app):
    ana, ben = app.config["tokens"]
    client = client_at(app, "203.0.113.1")
    statuses = [
        client.get("/api/tokens", headers={"Authorization": f"Bearer {ana}"}).status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert_limited_json(client.get("/api/jobs", headers={"Authorization": f"Bearer {ana}"}))
    # Another token from the same address is counted apart.
    assert client.get("/api/tokens", headers={"Authorization": f"Bearer {ben}"}).status_code == 200


def test_the_public_api_is_limited_per_client(app):
    reader = client_at(app, "203.0.113.10")
    statuses = [reader.get(path).status_code for path in
                ("/api/sources", "/api/sources?page=2", "/api/sources/1/captures", "/api/sources")]
    # One budget for the public API: the captures endpoint counts against it too.
    assert statuses[:2] == [200, 200] and statuses[3] == 429
    assert_limited_json(reader.get("/oembed?url=x"))
    assert client_at(app, "203.0.113.11").get("/api/sources").status_code == 200


def test_search_is_limited_and_the_plain_listing_is_not(app):
    reader = client_at(app, "203.0.113.20")
    statuses = [reader.get("/archive?q=land").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    page = reader.get("/archive?q=delta")
    assert page.status_code == 429 and page.mimetype == "text/html"
    assert "Retry-After" in page.headers and "Set-Cookie" not in page.headers
    assert [reader.get("/archive").status_code for _ in range(5)] == [200] * 5


def test_the_random_fragment_and_other_pages_are_never_counted(app):
    reader = client_at(app, "203.0.113.30")
    for _ in range(6):
        response = reader.get("/api/fragments/random")
        assert response.status_code != 429
        assert "Retry-After" not in response.headers
    assert [reader.get("/").status_code for _ in range(5)] == [200] * 5
    # No limiter hook of this limiter runs for the rest of the app.
    limiter = next(lim for lim in app.extensions["limiter"] if lim._key_prefix == API_KEY_PREFIX)
    hooks = [h for registry in (app.before_request_funcs, app.after_request_funcs,
                                app.teardown_request_funcs) for h in sum(registry.values(), [])]
    owners = [getattr(h, "__self__", None) or next(iter(getattr(h, "args", ())), None) for h in hooks]
    assert limiter not in owners


def test_stored_keys_hold_no_address_or_token(app):
    limiter = next(lim for lim in app.extensions["limiter"] if lim._key_prefix == API_KEY_PREFIX)
    if app.extensions["samizdat"].settings.redis_url:
        conn = redis.Redis.from_url(REDIS_URL)
        keys = [k.decode() for k in conn.scan_iter(f"*{API_KEY_PREFIX}*")]
        conn.close()
    else:
        keys = list(limiter._storage.storage)
    assert keys, "the limited requests above left counters"
    ana, ben = app.config["tokens"]
    for key in keys:
        assert API_KEY_PREFIX in key
        assert "203.0.113" not in key and ana not in key and ben not in key
