"""Every write endpoint of the URL map, attacked without credentials, with the wrong role, with a
revoked token or a disabled user, and cross-site with the session cookie (item: security tests).

The list is derived from ``app.url_map``, so a write endpoint added tomorrow is attacked too and
fails here unless it checks credentials or is named in PUBLIC_WRITES with the reason. That the
replay cannot act with an archivist's session is proved in tests/browser/test_replay.py.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select, update

from accounts.models import ApiToken, User
from fragments.models import Collection, Fragment
from mirror.models import Source
from tests.conftest import TEST_PASSWORD, create_account, issue_account_token, make_settings

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Writes anyone may send, and why each is safe without an account.
PUBLIC_WRITES = {
    # The way in: CSRF-checked, rate-limited, and it says nothing about which names exist.
    "accounts.login",
    # Ends only the caller's own session, and only with the session's CSRF token.
    "accounts.logout",
    # A 308 to the /manage/ address (method and body kept), which checks credentials itself.
    "moved.moved_page",
    # tlog-witness: anyone may submit a checkpoint; only one signed by a witnessed log's key
    # is cosigned (tests/witness/). Registered here because the walk's app is a witness.
    "witness.add_checkpoint",
}
_ARGUMENT = re.compile(r"<(?:(\w+)(\([^)]*\))?:)?(\w+)>")


@pytest.fixture
def settings(tmp_path, sqlite_url):
    """Authorization does not depend on the database engine: SQLite only, local store. The app
    is also a witness, so its one public write is walked too."""
    return make_settings(tmp_path, sqlite_url, witnessed_logs=str(tmp_path / "witnessed-logs"))


def fill(rule: str) -> str:
    """``rule`` with its arguments filled: ids 1, text "x", the first choice of an ``any()``."""

    def value(match: re.Match) -> str:
        converter, options = match.group(1), match.group(2)
        if converter == "any":
            return options.strip("()").split(",")[0].strip()
        return "1" if converter == "int" else "x"

    return _ARGUMENT.sub(value, rule)


def writes(app) -> list[tuple[str, str, str]]:
    """(method, filled path, endpoint) of every write the app answers."""
    return [
        (method, fill(rule.rule), rule.endpoint)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods & WRITE_METHODS)
    ]


def protected_writes(app) -> list[tuple[str, str, str, str]]:
    """(method, path, endpoint, required role) of every write that needs an account."""
    return [
        (method, path, endpoint, app.view_functions[endpoint].required_role)
        for method, path, endpoint in writes(app)
        if endpoint not in PUBLIC_WRITES
    ]


def row_counts(app) -> tuple[int, ...]:
    """How many sources, users, tokens, fragments and collections are stored."""
    with app.extensions["samizdat"].Session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(model))
            for model in (Source, User, ApiToken, Fragment, Collection)
        )


def test_every_write_endpoint_needs_a_role_or_is_a_named_public_write(app):
    found = writes(app)
    assert len(found) > 20  # the walk sees the whole map, not an empty list
    unprotected = [
        (method, path, endpoint)
        for method, path, endpoint in found
        if endpoint not in PUBLIC_WRITES
        and getattr(app.view_functions[endpoint], "required_role", None) is None
    ]
    assert unprotected == []
    assert {endpoint for _, _, endpoint in found} >= PUBLIC_WRITES  # no stale allow-list entry


def test_without_credentials_every_write_is_refused_and_writes_nothing(app, client):
    before = row_counts(app)
    for method, path, endpoint, _role in protected_writes(app):
        response = client.open(path, method=method, json={"url": "https://x.example/"})
        if path.startswith("/api/"):
            assert response.status_code == 401, (method, path)
            assert response.get_json()["status"] == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            # The house rule for archivist pages: a visitor is sent to log in, then back here.
            assert response.status_code == 302, (method, path, response.status_code)
            assert response.headers["Location"].startswith("/login?next="), (method, path)
    for method, path, endpoint in writes(app):
        if endpoint in PUBLIC_WRITES:
            response = client.open(path, method=method, data={"name": "boss"})
            # Login and logout refuse a form without the session's CSRF token; moved redirects.
            assert response.status_code in (308, 400, 403), (method, path, response.status_code)
    assert row_counts(app) == before


def test_archivist_pages_send_a_visitor_to_the_login_page(app, client):
    pages = [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/manage/")
             and "GET" in r.methods and "<" not in r.rule]
    assert "/manage/sources" in pages
    for path in pages:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next=")


def test_the_wrong_role_is_403_on_the_api_and_on_pages(app, client, login):
    token = issue_account_token(app, "arch", "archivist")
    admin_only = [w for w in protected_writes(app) if w[3] == "admin"]
    assert admin_only  # POST /api/users at least
    before = row_counts(app)
    for method, path, _endpoint, _role in admin_only:
        response = client.open(
            path, method=method, json={"name": "eve", "password": TEST_PASSWORD},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 403, (method, path)
        if path.startswith("/api/"):
            assert response.get_json()["status"] == 403
        else:  # an admin page (/manage/users): the friendly HTML 403
            assert "text/html" in response.content_type, (method, path)
    csrf = login(client, "arch")
    for method, path, _endpoint, _role in admin_only:
        response = client.open(path, method=method, headers={"X-CSRF-Token": csrf},
                               json={"name": "eve", "password": TEST_PASSWORD})
        assert response.status_code == 403, (method, path)
    assert row_counts(app) == before


def api_writes(app):
    """The protected writes under /api/ (the ones a Bearer token may call)."""
    return [w for w in protected_writes(app) if w[1].startswith("/api/")]


def test_a_revoked_token_and_a_disabled_users_token_are_401_everywhere(app, client):
    revoked = issue_account_token(app, "gone", "admin")
    disabled = issue_account_token(app, "off", "admin")
    with app.extensions["samizdat"].Session() as session:
        session.execute(update(ApiToken).values(revoked_at=func.now())
                        .where(ApiToken.user_id == select(User.id).where(User.name == "gone")
                               .scalar_subquery()))
        session.execute(update(User).values(active=False).where(User.name == "off"))
        session.commit()
    before = row_counts(app)
    for token in (revoked, disabled, "smz_" + "0" * 43, "garbage"):
        for method, path, _endpoint, _role in api_writes(app):
            response = client.open(path, method=method, json={"url": "https://x.example/"},
                                   headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401, (token[:8], method, path)
    assert row_counts(app) == before


# (what, the token the forged request carries, extra headers its browser sends)
CROSS_SITE = [
    ("no token", "", {}),
    ("a wrong token", "not-the-session-token", {}),
    # A token that leaked (a log, a screenshot) still fails when the browser names another site.
    ("another site's Origin", "right", {"Origin": "https://evil.example"}),
    ("a sibling site's Origin", "right", {"Origin": "http://evil.localhost"}),
    ("Sec-Fetch-Site: cross-site", "right", {"Sec-Fetch-Site": "cross-site"}),
    ("Sec-Fetch-Site: same-site", "right", {"Sec-Fetch-Site": "same-site"}),
]


def test_cross_site_writes_with_the_session_cookie_are_refused(app, client, login):
    create_account(app, "boss", "admin")
    csrf = login(client, "boss")
    before = row_counts(app)
    for what, token, headers in CROSS_SITE:
        token = csrf if token == "right" else token
        form = {"url": "https://x.example/", "csrf_token": token}
        for method, path, _endpoint, _role in protected_writes(app):
            response = client.open(path, method=method, headers=headers, data=form)
            assert response.status_code == 403, (what, method, path, response.status_code)
        assert client.post("/logout", headers=headers, data=form).status_code == 403, what
    assert row_counts(app) == before
    # Still logged in: none of that ended the session, and this site's own forms still work.
    response = client.post(
        "/manage/sources", data={"url": "https://ok.example/", "csrf_token": csrf},
        headers={"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"},
    )
    assert response.status_code in (302, 303), response.get_data(as_text=True)
    # Browsers send "Origin: null" for this site's own forms under Referrer-Policy: no-referrer.
    response = client.post("/api/sources", json={"url": "https://two.example/"},
                           headers={"X-CSRF-Token": csrf, "Origin": "null"})
    assert response.status_code == 201
    assert row_counts(app)[0] == before[0] + 2


def test_a_login_form_posted_from_another_site_is_refused(app, client):
    create_account(app, "boss", "admin")
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    response = client.post("/login", data={"name": "boss", "password": TEST_PASSWORD,
                                           "csrf_token": csrf},
                           headers={"Origin": "https://evil.example"})
    assert response.status_code == 400
    assert "another site" in response.get_data(as_text=True)


def test_login_says_the_same_and_hashes_the_same_for_unknown_and_existing_names(
    app, client, monkeypatch
):
    import accounts.users

    create_account(app, "arch", "archivist")
    create_account(app, "off", "archivist")
    with app.extensions["samizdat"].Session() as session:
        session.execute(update(User).values(active=False).where(User.name == "off"))
        session.commit()
    checks: list[str] = []
    real_check = accounts.users.check_password_hash

    def counted(pwhash: str, password: str) -> bool:
        checks.append(pwhash.split("$", 1)[0])
        return real_check(pwhash, password)

    # Observed, not replaced: the real scrypt check still runs and decides.
    monkeypatch.setattr(accounts.users, "check_password_hash", counted)
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    answers = []
    for name, password in [("arch", "wrong password!"), ("nobody00", "wrong password!"),
                           ("off", TEST_PASSWORD)]:
        checks.clear()
        response = client.post("/login", data={"name": name, "password": password,
                                               "csrf_token": csrf})
        body = response.get_data(as_text=True).replace(f'value="{name}"', 'value="NAME"')
        answers.append((response.status_code, body, tuple(checks)))
    assert answers[0][0] == 401
    assert answers[0] == answers[1] == answers[2]
    assert len(answers[0][2]) == 1 and answers[0][2][0].startswith("scrypt")
