"""/manage/users (admins), /manage/account (anyone signed in), /manage/audit and GET /api/audit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from accounts.models import ApiToken, AuditEntry, User
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import TEST_PASSWORD, create_account, csrf_of, issue_account_token, make_settings

NEW_PASSWORD = "an even longer passphrase"
COOKIE = "samizdat_session"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One SQLite app for the module, with the admin 'boss' and the archivist 'ana'."""
    tmp = tmp_path_factory.mktemp("manage-users")
    url = f"sqlite:///{tmp / 'users.db'}"
    migrate.upgrade(url)
    application = create_app(make_settings(tmp, url))
    create_account(application, "boss", "admin")
    create_account(application, "ana")
    yield application
    application.extensions["samizdat"].dispose()


def signed_in(app, name: str, password: str = TEST_PASSWORD):
    """A new browser logged in as ``name``."""
    client = app.test_client()
    client.get("/login")
    response = client.post(
        "/login", data={"name": name, "password": password, "csrf_token": csrf_of(client)}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


@pytest.fixture(scope="module")
def boss(app):
    return signed_in(app, "boss")


def post(client, path: str, **data):
    return client.post(path, data={"csrf_token": csrf_of(client), **data})


def user(app, name: str) -> User | None:
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(User).where(User.name == name))


def audit_count(app) -> int:
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(func.count()).select_from(AuditEntry))


def test_only_admins_see_the_users_page(app, boss):
    anonymous = app.test_client().get("/manage/users")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/login")
    ana = signed_in(app, "ana")
    refused = ana.get("/manage/users")
    assert refused.status_code == 403 and "admin role" in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    page = boss.get("/manage/users")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "ana" in body and "archivist, active" in body
    assert page.headers["Cache-Control"] == "no-store"


def test_adding_a_user_returns_to_the_page_and_is_audited(app, boss):
    before = audit_count(app)
    response = post(boss, "/manage/users", name="dora", role="archivist", password=TEST_PASSWORD)
    assert response.status_code == 303 and response.headers["Location"].endswith("/manage/users")
    assert user(app, "dora").role == "archivist"
    assert audit_count(app) == before + 1


@pytest.mark.parametrize(
    "form, message",
    [
        ({"name": "x" * 101, "role": "archivist", "password": TEST_PASSWORD}, "name must be"),
        ({"name": "eve", "role": "root", "password": TEST_PASSWORD}, "role must be"),
        ({"name": "eve", "role": "archivist", "password": "short"}, "at least 10"),
        ({"name": "eve<script>", "role": "archivist", "password": TEST_PASSWORD}, "name must be"),
    ],
)
def test_bad_user_forms_are_400_and_leave_nothing(app, boss, form, message):
    before = audit_count(app)
    response = post(boss, "/manage/users", **form)
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert message in body and "<script>" not in body
    assert user(app, "eve") is None and audit_count(app) == before


def test_forms_without_csrf_change_nothing(app, boss):
    before = audit_count(app)
    response = boss.post("/manage/users", data={"name": "mallory", "role": "admin",
                                                 "password": TEST_PASSWORD})
    assert response.status_code == 403
    assert user(app, "mallory") is None and audit_count(app) == before


def test_disable_enable_and_role(app, boss):
    dora = user(app, "dora")
    assert post(boss, f"/manage/users/{dora.id}/disable").status_code == 303
    assert not user(app, "dora").active
    assert post(boss, f"/manage/users/{dora.id}/enable").status_code == 303
    assert user(app, "dora").active
    assert post(boss, f"/manage/users/{dora.id}/role", role="admin").status_code == 303
    assert user(app, "dora").role == "admin"
    assert post(boss, f"/manage/users/{dora.id}/role", role="emperor").status_code == 400
    assert post(boss, f"/manage/users/{dora.id}/role", role="archivist").status_code == 303
    assert post(boss, "/manage/users/2147483647/disable").status_code == 404
    assert post(boss, "/manage/users/99999999999/disable").status_code == 404
    with app.extensions["samizdat"].Session() as session:
        actions = list(session.scalars(
            select(AuditEntry.action).where(AuditEntry.target_id == str(dora.id),
                                            AuditEntry.target_kind == "user")
            .order_by(AuditEntry.id)))
    assert actions == ["user.add", "user.disable", "user.enable", "user.role", "user.role"]


def test_the_last_admin_cannot_be_demoted_or_disabled(app, boss):
    me = user(app, "boss")
    assert post(boss, f"/manage/users/{me.id}/role", role="archivist").status_code == 400
    assert post(boss, f"/manage/users/{me.id}/disable").status_code == 400
    assert user(app, "boss").role == "admin" and user(app, "boss").active


def test_reset_password_ends_the_users_sessions(app, boss):
    dora_browser = signed_in(app, "dora")
    assert dora_browser.get("/manage/account").status_code == 200
    dora = user(app, "dora")
    assert post(boss, f"/manage/users/{dora.id}/password", password="short").status_code == 400
    assert post(boss, f"/manage/users/{dora.id}/password", password=NEW_PASSWORD).status_code == 303
    assert dora_browser.get("/manage/account").status_code == 302
    signed_in(app, "dora", NEW_PASSWORD)


def test_token_secret_is_shown_once_and_last_use_is_listed(app, boss):
    ana = user(app, "ana")
    shown = post(boss, f"/manage/users/{ana.id}/tokens", label="importer <b>")
    assert shown.status_code == 200
    body = shown.get_data(as_text=True)
    assert shown.headers["Cache-Control"] == "no-store"
    secret = body.split('<code class="secret">')[1].split("</code>")[0]
    assert secret.startswith("smz_")
    listing = boss.get("/manage/users").get_data(as_text=True)
    assert secret not in listing and "importer &lt;b&gt;" in listing and "never" in listing
    # Used once: the listing shows when, instead of "never".
    assert app.test_client().get("/api/tokens", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    own = signed_in(app, "ana").get("/manage/account").get_data(as_text=True)
    assert "importer &lt;b&gt;" in own and "UTC</td>" in own
    with app.extensions["samizdat"].Session() as session:
        token = session.scalar(select(ApiToken).where(ApiToken.prefix == secret[:10]))
        details = " ".join(str(e.detail) for e in session.scalars(select(AuditEntry)))
    assert secret not in details and secret[10:] not in details
    assert post(boss, f"/manage/tokens/{token.id}/revoke").status_code == 303
    assert app.test_client().get("/api/tokens", headers={"Authorization": f"Bearer {secret}"}).status_code == 401
    assert "revoked" in boss.get("/manage/users").get_data(as_text=True)


def test_own_password_change_needs_the_current_one_and_ends_other_sessions(app):
    create_account(app, "fay")
    browser = signed_in(app, "fay")
    other = app.test_client()
    other.set_cookie(COOKIE, browser.get_cookie(COOKIE).value)
    before = audit_count(app)
    wrong = post(browser, "/manage/account/password", current_password="not it at all",
                 new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(as_text=True)
    differ = post(browser, "/manage/account/password", current_password=TEST_PASSWORD,
                  new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD + "x")
    assert differ.status_code == 400
    assert audit_count(app) == before
    done = post(browser, "/manage/account/password", current_password=TEST_PASSWORD,
                new_password=NEW_PASSWORD, confirm_password=NEW_PASSWORD)
    assert done.status_code == 303
    assert browser.get("/manage/account").status_code == 200  # this session goes on
    assert other.get("/manage/account").status_code == 302  # the copy is dead
    assert audit_count(app) == before + 1


def test_audit_page_and_api_are_for_admins_only(app, boss):
    ana_token = issue_account_token(app, "gus", "archivist")
    admin_token = issue_account_token(app, "hal", "admin")
    assert signed_in(app, "ana").get("/manage/audit").status_code == 403
    assert app.test_client().get("/api/audit").status_code == 401
    assert app.test_client().get(
        "/api/audit", headers={"Authorization": f"Bearer {ana_token}"}).status_code == 403
    page = boss.get("/manage/audit?action=user&page=99999999999999999999")
    assert page.status_code == 200
    page = boss.get("/manage/audit?actor=boss&action=user.role")
    assert page.status_code == 200 and "user.role" in page.get_data(as_text=True)
    assert boss.get("/manage/audit?target_kind=planet").status_code == 400
    api = app.test_client()
    headers = {"Authorization": f"Bearer {admin_token}"}
    listed = api.get("/api/audit?action=user.disable&per_page=1", headers=headers).get_json()
    assert listed["total"] >= 1 and len(listed["items"]) == 1
    item = listed["items"][0]
    assert item["action"] == "user.disable" and item["actor"]["name"] == "boss"
    assert item["target"]["kind"] == "user"
    assert api.get("/api/audit?page=abc", headers=headers).status_code == 400
    assert api.get("/api/audit?actor=" + "x" * 500, headers=headers).status_code == 400
    newest_first = api.get("/api/audit", headers=headers).get_json()["items"]
    assert [i["id"] for i in newest_first] == sorted((i["id"] for i in newest_first), reverse=True)
    assert json.dumps(newest_first).count(TEST_PASSWORD) == 0


def test_an_archivist_issues_their_own_token_once_with_csrf_and_an_audit_entry(app):
    create_account(app, "ivy")
    browser = signed_in(app, "ivy")
    page = browser.get("/manage/account").get_data(as_text=True)
    assert 'action="/manage/account/tokens"' in page and "POST /api/tokens" not in page
    before = audit_count(app)
    forged = browser.post("/manage/account/tokens", data={"label": "no csrf"})
    assert forged.status_code == 403 and audit_count(app) == before
    too_long = post(browser, "/manage/account/tokens", label="x" * 101)
    assert too_long.status_code == 400 and "at most 100" in too_long.get_data(as_text=True)
    assert audit_count(app) == before
    shown = post(browser, "/manage/account/tokens", label="importer")
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    body = shown.get_data(as_text=True)
    secret = body.split('<code class="secret">')[1].split("</code>")[0]
    assert 'href="/manage/account"' in body
    mine = app.test_client().get("/api/tokens", headers={"Authorization": f"Bearer {secret}"})
    assert [t["label"] for t in mine.get_json()["items"]] == ["importer"]
    listing = browser.get("/manage/account").get_data(as_text=True)
    assert "importer" in listing and secret not in listing
    with app.extensions["samizdat"].Session() as session:
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
    assert (entry.actor_name, entry.action) == ("ivy", "token.issue")
    assert json.loads(entry.detail)["user"] == "ivy" and secret[10:] not in entry.detail


def test_the_login_page_says_how_the_first_account_is_made_and_names_nobody(app):
    page = app.test_client().get("/login").get_data(as_text=True)
    assert "flask users create NAME --role admin" in page
    assert not any(f">{name}<" in page or f" {name} " in page for name in ("boss", "ana"))


def test_the_readmes_first_account_command_makes_an_admin_who_can_log_in(app):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    command = re.search(r"`\.venv/bin/flask (users create NAME --role admin)`", readme)
    assert command, "the README's quick start must say how the first account is made"
    args = command.group(1).replace("NAME", "first").split()
    # As typed: the password is prompted for, twice.
    result = app.test_cli_runner().invoke(args=args, input=f"{TEST_PASSWORD}\n{TEST_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert user(app, "first").role == "admin"
    assert signed_in(app, "first").get("/manage/users").status_code == 200
