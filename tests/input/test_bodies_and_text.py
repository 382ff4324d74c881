"""Wrong JSON types, malformed bodies and unstorable text (NUL, lone surrogates): a clear 400,
JSON on the API and a page elsewhere, and nothing written."""

from __future__ import annotations

import pytest

from accounts.models import ApiToken, User
from mirror.models import Source
from tests.conftest import create_account
from tests.input.conftest import count

LONE_SURROGATE = "\ud800"


def add_source(client, admin) -> int:
    response = client.post("/api/sources", json={"url": "https://ok.example/"}, headers=admin)
    assert response.status_code == 201
    return response.get_json()["id"]


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/api/tokens", {"label": 5}),
        ("POST", "/api/tokens", {"label": ["a"]}),
        ("POST", "/api/tokens", ["label"]),
        ("POST", "/api/tokens", "label"),
        ("POST", "/api/users", {"name": 5, "password": "long enough password"}),
        ("POST", "/api/users", {"name": "cleo", "password": 12345678901}),
        ("POST", "/api/users", {"name": "cleo", "role": ["admin"], "password": "long password"}),
        ("POST", "/api/users", [{"name": "cleo"}]),
        ("POST", "/api/sources", {"url": 5}),
        ("POST", "/api/sources", {"url": ["https://x.example/"]}),
        ("POST", "/api/sources", {"url": "https://x.example/", "country": 84}),
        ("POST", "/api/sources", {"url": "https://x.example/", "collection": {"a": 1}}),
        ("POST", "/api/sources", {"url": "https://x.example/", "collection": "c" * 300}),
        ("POST", "/api/sources", ["https://x.example/"]),
        ("POST", "/api/sources", None),
        ("PATCH", "/api/sources/{id}", {"country": 84}),
        ("PATCH", "/api/sources/{id}", {"collection": 5}),
        ("PATCH", "/api/sources/{id}", {"collection": "c" * 300}),
        ("PATCH", "/api/sources/{id}", {"active": "yes"}),
        ("PATCH", "/api/sources/{id}", [{"active": False}]),
    ],
)
def test_wrong_json_types_are_a_400_that_writes_nothing(app, client, admin, method, path, body):
    source_id = add_source(client, admin)
    before = (count(app, Source), count(app, User), count(app, ApiToken))
    response = client.open(path.format(id=source_id), method=method, json=body, headers=admin)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["error"]
    assert (count(app, Source), count(app, User), count(app, ApiToken)) == before
    assert client.get(f"/api/sources/{source_id}/captures").status_code == 200
    listed = client.get("/api/sources").get_json()["items"]
    assert [(s["country"], s["collection"], s["active"]) for s in listed] == [(None, None, True)]


def test_a_token_request_without_a_body_still_issues_a_token(app, client, admin):
    response = client.post("/api/tokens", headers=admin)
    assert response.status_code == 201 and response.get_json()["label"] is None


@pytest.mark.parametrize(
    "data",
    [
        b'{"url": "https://x.example/"',  # cut short
        b"\xff\xfe{}",  # not UTF-8
        b"[" * 100_000 + b"]" * 100_000,  # nested deeper than any parser's stack
        b'{"url": "' + b"9" * 5000 + b'"}',
        b'{"url": ' + b"9" * 5000 + b"}",  # an integer longer than int() reads
    ],
    ids=["truncated", "not-utf8", "deeply-nested", "long-string", "long-number"],
)
def test_malformed_json_bodies_are_a_400(app, client, admin, data):
    response = client.post(
        "/api/sources", data=data, content_type="application/json", headers=admin
    )
    assert response.status_code == 400 and response.get_json()["status"] == 400
    assert count(app, Source) == 0


@pytest.mark.parametrize("bad", [LONE_SURROGATE, "\x00"], ids=["surrogate", "nul"])
@pytest.mark.parametrize(
    "method, path, body",
    [
        ("POST", "/api/sources", {"url": "https://x.example/{bad}"}),
        ("POST", "/api/sources", {"url": "https://x{bad}.example/"}),
        ("POST", "/api/sources", {"url": "https://x.example/", "collection": "c{bad}"}),
        ("POST", "/api/tokens", {"label": "laptop{bad}"}),
        ("POST", "/api/users", {"name": "cleo{bad}", "password": "long enough password"}),
        ("POST", "/api/users", {"name": "cleo", "password": "long enough password{bad}"}),
        ("POST", "/api/collections", {"name": "c{bad}"}),
        ("PATCH", "/api/fragments/x", {"text": "t{bad}"}),
        ("POST", "/api/sources", {"url": "https://x.example/", "k{bad}": 1}),
    ],
)
def test_unstorable_text_in_json_is_a_400_that_writes_nothing(
    app, client, admin, method, path, body, bad
):
    payload = {key.replace("{bad}", bad): (v.replace("{bad}", bad) if isinstance(v, str) else v)
               for key, v in body.items()}
    before = (count(app, Source), count(app, User), count(app, ApiToken))
    response = client.open(path, method=method, json=payload, headers=admin)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["status"] == 400
    assert (count(app, Source), count(app, User), count(app, ApiToken)) == before


@pytest.mark.parametrize(
    "path",
    [
        "/api/sources?country=%00",
        "/api/sources?collection=a%00b",
        "/api/jobs?state=%00",
        "/api/fragments?q=%00",
        "/api/fragments/%00",
        "/manage/fragments?tag=%00",
        "/manage/jobs?state=%00",
        "/captures/1/%00",
    ],
)
def test_nul_in_the_path_or_query_string_is_a_400(client, admin, path):
    response = client.get(path)
    assert response.status_code == 400
    if path.startswith("/api/"):
        assert "NUL" in response.get_json()["error"]
    else:
        assert response.mimetype == "text/html" and "NUL" in response.get_data(as_text=True)


def test_nul_in_a_login_form_is_a_400_page(client):
    client.get("/login")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    response = client.post("/login", data={"name": "a\x00b", "password": "x", "csrf_token": csrf})
    assert response.status_code == 400 and response.mimetype == "text/html"


def test_nul_in_an_archive_form_is_a_400_that_writes_nothing(app, client, admin):
    form = {"url": "https://x.example/", "collection": "a\x00b"}
    form["csrf_token"] = admin["X-CSRF-Token"]
    response = client.post("/manage/sources", data=form)
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert count(app, Source) == 0


def test_bad_utf8_in_the_query_string_is_read_as_replacement_characters(client):
    # Werkzeug decodes %ED%A0%80 (an encoded surrogate) as U+FFFD: nothing unstorable gets in.
    response = client.get("/api/sources?collection=%ED%A0%80")
    assert response.status_code == 200 and response.get_json()["items"] == []


@pytest.mark.parametrize(
    "args, message",
    [
        (["sources", "add", "https://x.example/\udcff"], "lone surrogate"),
        (["sources", "add", "https://x.example/", "--collection", "c\udcff"], "lone surrogate"),
        (["sources", "add", "https://x.example/", "--collection", "c" * 300], "at most 100"),
        (["sources", "import", "-", "--collection", "c\udcff"], "lone surrogate"),
        (["fragments", "approve", "f\udcff"], "lone surrogate"),
        (["collections", "add", "c\udcff"], "lone surrogate"),
        (["users", "token", "boss", "--label", "l\udcff"], "lone surrogate"),
    ],
)
def test_cli_refuses_unstorable_arguments_in_one_line(app, cli, args, message):
    # An argument that is not valid UTF-8 reaches Python as lone surrogates (surrogateescape).
    create_account(app, "boss", "admin")
    result = cli.invoke(args=args, input="https://x.example/\n")
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert count(app, Source) == 0
