"""Every archivist write leaves exactly one audit entry, in the same transaction; refusals none."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import func, select

from accounts.models import AuditEntry
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import TEST_PASSWORD, issue_account_token, make_settings

PARAGRAPH = (
    "Paragraph {n}: the authorities blocked this page because it reported on the land dispute "
    "in the delta, naming the officials who signed the order."
)
DOCUMENT = "<html><body><article>" + "".join(
    f"<p>{PARAGRAPH.format(n=n)}</p>" for n in range(4)
) + "</article></body></html>"


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    """One SQLite app for the module (every test looks only at the entries it causes)."""
    tmp = tmp_path_factory.mktemp("audit")
    url = f"sqlite:///{tmp / 'audit.db'}"
    migrate.upgrade(url)
    application = create_app(make_settings(tmp, url))
    yield application
    application.extensions["samizdat"].dispose()


@pytest.fixture(scope="module")
def token(app) -> str:
    """The archivist 'ana''s API token."""
    return issue_account_token(app, "ana", "archivist")


@pytest.fixture(scope="module")
def api(app, token):
    """``api(method, path, **kw)`` with ana's token."""
    client = app.test_client()

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return client.open(path, method=method, headers=headers, **kwargs)

    return call


def last_id(app) -> int:
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(func.max(AuditEntry.id))) or 0


def entries_since(app, start: int) -> list[dict]:
    """The entries written after id ``start``, oldest first, as plain dicts."""
    with app.extensions["samizdat"].Session() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.id > start).order_by(AuditEntry.id)
        )
        return [
            {
                "actor": e.actor_name,
                "actor_id": e.actor_id,
                "action": e.action,
                "kind": e.target_kind,
                "target": e.target_id,
                "detail": json.loads(e.detail) if e.detail else None,
            }
            for e in rows
        ]


def one_entry(app, start: int) -> dict:
    found = entries_since(app, start)
    assert len(found) == 1, found
    return found[0]


def test_source_actions_each_leave_one_correct_entry(app, api):
    start = last_id(app)
    created = api("POST", "/api/sources", json={"url": "https://example.org/a", "country": "VN"})
    assert created.status_code == 201
    source_id = created.get_json()["id"]
    entry = one_entry(app, start)
    assert entry["actor"] == "ana" and entry["actor_id"] is not None
    assert (entry["action"], entry["kind"], entry["target"]) == ("source.add", "source", str(source_id))
    assert entry["detail"]["url"] == "https://example.org/a"

    start = last_id(app)
    assert api("PATCH", f"/api/sources/{source_id}", json={"country": "CN", "every": "2h"}).status_code == 200
    edit = one_entry(app, start)
    assert edit["action"] == "source.edit"
    assert edit["detail"]["country"] == ["VN", "CN"]
    assert edit["detail"]["interval_minutes"][1] == 120

    start = last_id(app)
    assert api("PATCH", f"/api/sources/{source_id}", json={"active": False}).status_code == 200
    assert one_entry(app, start)["action"] == "source.pause"

    start = last_id(app)
    assert api("POST", f"/api/sources/{source_id}/mirror").status_code == 202
    capture = one_entry(app, start)
    assert capture["action"] == "source.capture" and "job" in capture["detail"]

    start = last_id(app)
    assert api("DELETE", f"/api/sources/{source_id}").status_code == 200
    assert one_entry(app, start)["action"] == "source.delete"


def test_bulk_and_import_leave_one_entry_each(app, api):
    start = last_id(app)
    upload = io.BytesIO(b"https://example.org/i1\nhttps://example.org/i2\nnot a url\n")
    response = api("POST", "/api/sources/import", data={"file": (upload, "list.txt")})
    assert response.status_code == 200
    entry = one_entry(app, start)
    assert entry["action"] == "source.import"
    assert entry["detail"]["added"] == 2 and entry["detail"]["invalid"] == 1
    ids = entry["detail"]["ids"]

    start = last_id(app)
    assert api("POST", "/api/sources/bulk", json={"action": "pause", "ids": ids}).status_code == 200
    bulk = one_entry(app, start)
    assert bulk["action"] == "source.pause" and bulk["detail"]["ids"] == ids


def test_refused_actions_leave_no_entry(app, api):
    start = last_id(app)
    assert api("POST", "/api/sources", json={"url": "ftp://nope"}).status_code == 400
    assert api("PATCH", "/api/sources/1", json={"every": "0m"}).status_code in (400, 404)
    assert api("POST", "/api/sources/bulk", json={"action": "delete", "ids": [1]}).status_code in (400, 404)
    assert api("POST", "/api/collections", json={"name": ""}).status_code == 400
    # A session without CSRF, and a reader with no credentials: refused before anything runs.
    assert app.test_client().post("/api/sources", json={"url": "https://example.org/x"}).status_code == 401
    assert entries_since(app, start) == []


def test_upload_and_curation_leave_one_entry_each(app, api):
    source_id = api("POST", "/api/sources", json={"url": "https://example.org/doc"}).get_json()["id"]
    start = last_id(app)
    response = api(
        "POST", f"/api/sources/{source_id}/documents",
        data={"file": (io.BytesIO(DOCUMENT.encode()), "page.html")},
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    upload = one_entry(app, start)
    assert upload["action"] == "source.upload" and upload["target"] == str(source_id)

    listed = api("GET", "/api/fragments?status=pending").get_json()["items"]
    ids = [f["id"] for f in listed]
    assert len(ids) >= 3

    start = last_id(app)
    assert api("POST", f"/api/fragments/{ids[0]}/approve").status_code == 200
    approve = one_entry(app, start)
    assert (approve["action"], approve["target"]) == ("fragment.approve", ids[0])

    start = last_id(app)
    changed = api("PATCH", f"/api/fragments/{ids[1]}", json={"text": "A shorter, edited text."})
    assert changed.status_code == 200
    edit = one_entry(app, start)
    assert edit["action"] == "fragment.edit" and edit["detail"]["text"][1] == "A shorter, edited text."

    start = last_id(app)
    assert api("PATCH", f"/api/fragments/{ids[1]}", json={"add_tags": ["land"]}).status_code == 200
    assert one_entry(app, start)["detail"] == {"tags": [[], ["land"]]}

    start = last_id(app)
    bulk = api("POST", "/api/fragments/bulk", json={"action": "reject", "ids": ids[2:]})
    assert bulk.status_code == 200
    entry = one_entry(app, start)
    assert entry["action"] == "fragment.reject"
    if len(ids) > 3:
        assert entry["detail"]["ids"] == ids[2:] and entry["target"] is None
    else:
        assert entry["target"] == ids[2]

    start = last_id(app)
    # Approving one's own edit is refused: no entry.
    assert api("POST", f"/api/fragments/{ids[1]}/approve").status_code == 403
    assert entries_since(app, start) == []


def test_collections_leave_one_entry_each(app, api):
    start = last_id(app)
    assert api("POST", "/api/collections", json={"name": "delta"}).status_code == 201
    assert one_entry(app, start)["action"] == "collection.add"
    start = last_id(app)
    assert api("PATCH", "/api/collections/delta", json={"auto_approve": True}).status_code == 200
    entry = one_entry(app, start)
    assert entry["action"] == "collection.edit" and entry["detail"] == {"auto_approve": [False, True]}


def test_cli_actions_name_the_shell(app):
    cli = app.test_cli_runner()
    start = last_id(app)
    assert cli.invoke(args=["sources", "add", "https://example.org/cli"]).exit_code == 0
    entry = one_entry(app, start)
    assert entry["action"] == "source.add"
    assert entry["actor"].startswith("cli:") and entry["actor_id"] is None

    start = last_id(app)
    result = cli.invoke(args=["users", "create", "cleo", "--password-stdin"], input=TEST_PASSWORD + "\n")
    assert result.exit_code == 0
    assert one_entry(app, start)["action"] == "user.add"
    result = cli.invoke(args=["audit", "list", "--action", "user", "--json"])
    assert result.exit_code == 0
    assert json.loads(result.output.splitlines()[0])["action"] == "user.add"
    bad = cli.invoke(args=["audit", "list", "--target-kind", "planet"])
    assert bad.exit_code != 0 and "target_kind" in bad.output


def test_no_entry_holds_a_password_or_token(app, api):
    issued = api("POST", "/api/tokens", json={"label": "script"}).get_json()["token"]
    with app.extensions["samizdat"].Session() as session:
        text = " ".join(
            f"{e.actor_name} {e.action} {e.target_id} {e.detail}" for e in session.scalars(select(AuditEntry))
        )
    assert "token.issue" in text
    assert issued not in text and issued[10:] not in text
    assert TEST_PASSWORD not in text


def test_archivist_pages_record_like_the_api(app):
    from tests.conftest import create_account, csrf_of

    create_account(app, "pia")
    browser = app.test_client()
    browser.get("/login")
    browser.post("/login", data={"name": "pia", "password": TEST_PASSWORD,
                                 "csrf_token": csrf_of(browser)})

    def form(path: str, **data):
        response = browser.post(path, data={"csrf_token": csrf_of(browser), **data})
        assert response.status_code in (200, 303), response.get_data(as_text=True)
        return response

    start = last_id(app)
    form("/manage/sources", url="https://example.org/page", country="VN")
    entry = one_entry(app, start)
    assert (entry["actor"], entry["action"]) == ("pia", "source.add")
    source_id = entry["target"]

    start = last_id(app)
    form(f"/manage/sources/{source_id}/edit", country="TH", collection="", every="6h")
    assert one_entry(app, start)["detail"]["country"] == ["VN", "TH"]

    start = last_id(app)
    form(f"/manage/sources/{source_id}/mirror")
    assert one_entry(app, start)["action"] == "source.capture"

    start = last_id(app)
    asked = form(f"/manage/sources/{source_id}/delete")
    assert asked.status_code == 200 and entries_since(app, start) == []  # only the question
    form("/manage/sources/bulk", action="delete", confirm="yes", ids=source_id)
    entry = one_entry(app, start)
    assert (entry["action"], entry["target"]) == ("source.delete", source_id)

    start = last_id(app)
    refused = browser.post("/manage/sources", data={"url": "https://example.org/no-csrf"})
    assert refused.status_code == 403 and entries_since(app, start) == []


def test_logins_succeeded_and_failed_leave_entries_without_the_password(app):
    from tests.conftest import create_account, csrf_of

    create_account(app, "lan")
    browser = app.test_client()

    def attempt(name: str, password: str) -> int:
        browser.get("/login")
        return browser.post("/login", data={"name": name, "password": password,
                                            "csrf_token": csrf_of(browser)}).status_code

    start = last_id(app)
    assert attempt("lan", "not-the-password-42") == 401
    entry = one_entry(app, start)
    assert (entry["actor"], entry["action"], entry["kind"]) == ("login form", "user.login-failed", "user")
    assert entry["detail"]["account"] == "lan" and entry["target"] is not None

    # A name no account has is whoever typed it (maybe a password in the wrong field): only a digest.
    start = last_id(app)
    typed = "<script>alert(1)</script> admin' OR 1=1 hunter2"
    assert attempt(typed, TEST_PASSWORD) == 401 and attempt(typed, "again") == 401
    first, second = entries_since(app, start)
    assert first["action"] == second["action"] == "user.login-failed" and first["target"] is None
    assert first["detail"]["result"] == "no such account"
    assert first["detail"]["name_digest"] == second["detail"]["name_digest"]  # repeated guesses show
    stored = json.dumps(entries_since(app, start))
    assert "script" not in stored and "hunter2" not in stored and TEST_PASSWORD not in stored

    start = last_id(app)
    assert attempt("lan", TEST_PASSWORD) == 303
    entry = one_entry(app, start)
    assert (entry["actor"], entry["action"], entry["detail"]) == ("lan", "user.login", {"result": "signed in"})
    with app.extensions["samizdat"].Session() as session:
        text = " ".join(str(e.detail) for e in session.scalars(select(AuditEntry)))
    assert TEST_PASSWORD not in text and "not-the-password-42" not in text
