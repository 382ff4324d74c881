"""Memento (RFC 7089): TimeMaps, TimeGates and the headers on mementos, on SQLite and PostgreSQL,
over real captures of a real page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from flask import Flask
from sqlalchemy import update

from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat import migrate
from samizdat.app import create_app
from tests.archive.changing_site import ChangingSite
from tests.conftest import _truncate_all, make_settings

FIRST = datetime(2024, 1, 10, 12, 0, 0, tzinfo=timezone.utc)
SECOND = datetime(2024, 3, 10, 12, 0, 0, tzinfo=timezone.utc)
# Links are absolute on SAMIZDAT_PUBLIC_URL (make_settings keeps its default).
BASE = "http://127.0.0.1:8000"
FIRST_HTTP = "Wed, 10 Jan 2024 12:00:00 GMT"
SECOND_HTTP = "Sun, 10 Mar 2024 12:00:00 GMT"


@dataclass
class Archived:
    """The app, and the page captured twice: its URL and its two capture ids, oldest first."""

    app: Flask
    site: ChangingSite
    url: str
    first: int
    second: int


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def archived(request, tmp_path_factory):
    """A source captured twice (changed in between), its captures dated two months apart, on
    SQLite and on PostgreSQL (as ``database_url`` does, but once per module: the tests only add
    to it, and a real capture per test would make them slow)."""
    tmp_path = tmp_path_factory.mktemp("memento")
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'samizdat.db'}"
        migrate.upgrade(database_url)
    else:
        database_url = request.getfixturevalue("postgres_url")
        _truncate_all(database_url)
    app = create_app(make_settings(tmp_path, database_url))
    rt = app.extensions["samizdat"]
    site = ChangingSite(tmp_path / "site")
    url = site.publish("Blocked", "The first version.")
    with rt.Session() as session:
        source_id = add_source(session, url, 60).source.id
        session.commit()
    # Fetch and spool only: Memento needs the capture rows and files, not fragments.
    first = capture_source(rt, source_id, process=False).capture_id
    site.publish("Blocked", "The second version, edited.")
    second = capture_source(rt, source_id, process=False).capture_id
    # Captures taken a second apart cannot show "between": date them two months apart.
    with rt.Session() as session:
        for capture_id, when in ((first, FIRST), (second, SECOND)):
            session.execute(update(Capture).where(Capture.id == capture_id).values(fetched_at=when))
        session.commit()
    yield Archived(app, site, url, first, second)
    site.close()
    rt.dispose()


LINK = re.compile(r'<([^>]*)>((?:\s*;\s*[a-zA-Z]+\s*=\s*"[^"]*")*)\s*(?:,|$)')
PARAM = re.compile(r';\s*([a-zA-Z]+)\s*=\s*"([^"]*)"')


def parse_links(text: str) -> list[tuple[str, dict[str, str]]]:
    """A small RFC 6690 link-format parser: (URI, params) of every link, in order."""
    text = text.strip()
    links, pos = [], 0
    while pos < len(text):
        match = LINK.match(text, pos)
        assert match, f"not link-format at {pos}: {text[pos:pos + 80]!r}"
        links.append((match.group(1), dict(PARAM.findall(match.group(2)))))
        pos = match.end()
        while pos < len(text) and text[pos] in " \r\n\t":
            pos += 1
    return links


def by_rel(links, rel_word: str) -> list[tuple[str, dict[str, str]]]:
    """The links whose rel contains ``rel_word``."""
    return [(uri, p) for uri, p in links if rel_word in p.get("rel", "").split()]


def replay(capture_id: int) -> str:
    """The absolute memento URI of a capture, on the app's public address."""
    return f"{BASE}/captures/{capture_id}/replay"


def test_the_timemap_lists_every_capture_with_its_datetime(archived):
    # Links are on the public address, whatever Host the request claims.
    response = archived.app.test_client().get(
        f"/timemap/link/{archived.url}", headers={"Host": "evil.example"}
    )
    assert response.status_code == 200
    assert response.mimetype == "application/link-format"
    links = parse_links(response.get_data(as_text=True))
    assert [uri for uri, _ in by_rel(links, "original")] == [archived.url]
    timegates = [uri for uri, _ in by_rel(links, "timegate")]
    assert timegates == [f"{BASE}/timegate/{archived.url}"]
    (self_uri, self_params), = by_rel(links, "self")
    assert self_uri == f"{BASE}/timemap/link/{archived.url}"
    assert self_params["type"] == "application/link-format"
    assert (self_params["from"], self_params["until"]) == (FIRST_HTTP, SECOND_HTTP)
    mementos = by_rel(links, "memento")
    assert [(uri, p["datetime"]) for uri, p in mementos] == [
        (replay(archived.first), FIRST_HTTP), (replay(archived.second), SECOND_HTTP),
    ]
    assert mementos[0][1]["rel"] == "first memento"
    assert mementos[1][1]["rel"] == "last memento"


def test_the_timemap_finds_the_page_however_its_url_is_written(archived):
    client = archived.app.test_client()
    variants = [
        archived.url,
        archived.url + "/",  # a trailing slash
        archived.url.replace("http://", "HTTP://"),  # scheme case
        archived.url.replace("http://", "http:/"),  # "//" merged by a proxy
        archived.url.replace("http://", ""),  # no scheme
        archived.url + "#section-2",  # a fragment never reaches a server, nor a source's URL
    ]
    for variant in variants:
        response = client.get(f"/timemap/link/{variant}")
        assert response.status_code == 200, variant
        links = parse_links(response.get_data(as_text=True))
        assert [uri for uri, _ in by_rel(links, "original")] == [archived.url], variant


def test_a_url_with_a_query_string_is_its_own_page(archived):
    rt = archived.app.extensions["samizdat"]
    url = archived.site.url("/article.html?id=7&lang=vi")
    with rt.Session() as session:
        source_id = add_source(session, url, 60).source.id
        session.commit()
    capture_id = capture_source(rt, source_id, process=False).capture_id
    client = archived.app.test_client()
    links = parse_links(client.get(f"/timemap/link/{url}").get_data(as_text=True))
    assert [uri for uri, _ in by_rel(links, "original")] == [url]
    assert [uri for uri, _ in by_rel(links, "memento")] == [replay(capture_id)]
    # Following the TimeMap's own links works too (url_for escapes the "?" into the path).
    (timegate,) = [uri for uri, _ in by_rel(links, "timegate")]
    assert client.get(timegate).headers["Location"] == replay(capture_id)


# Each case in one test, not parametrised: the fixture captures a real page for every test.
TIMEGATE_CASES = [
    ("Thu, 01 Feb 2024 00:00:00 GMT", "first"),  # between, nearer the first
    ("Fri, 01 Mar 2024 00:00:00 GMT", "second"),  # between, nearer the second
    ("Sat, 01 Jan 2000 00:00:00 GMT", "first"),  # before the first
    ("Tue, 01 Jan 2030 00:00:00 GMT", "second"),  # after the last
    (FIRST_HTTP, "first"),  # exactly a memento's datetime
    (None, "second"),  # no Accept-Datetime: the latest
]


def test_the_timegate_redirects_to_the_closest_memento(archived):
    for accept_datetime, expected in TIMEGATE_CASES:
        check_timegate(archived, accept_datetime, expected)


def check_timegate(archived, accept_datetime: str | None, expected: str) -> None:
    """The TimeGate's answer for one Accept-Datetime: a redirect to ``expected``, with links."""
    headers = {"Accept-Datetime": accept_datetime} if accept_datetime else {}
    response = archived.app.test_client().get(f"/timegate/{archived.url}", headers=headers)
    assert response.status_code == 302
    assert response.headers["Location"] == replay(getattr(archived, expected)), accept_datetime
    assert response.headers["Vary"].lower() == "accept-datetime"
    links = parse_links(response.headers["Link"])
    assert [uri for uri, _ in by_rel(links, "original")] == [archived.url]
    (timemap, params), = by_rel(links, "timemap")
    assert timemap == f"{BASE}/timemap/link/{archived.url}"
    assert params["type"] == "application/link-format"
    mementos = {uri: p["datetime"] for uri, p in by_rel(links, "memento")}
    assert mementos[response.headers["Location"]] in (FIRST_HTTP, SECOND_HTTP)
    assert by_rel(links, "first")[0][0] == replay(archived.first)
    assert by_rel(links, "last")[0][0] == replay(archived.second)


MALFORMED_DATES = [
    "yesterday",
    "2024-02-01T00:00:00Z",
    "Thu, 31 Feb 2024 20:35:00 GMT",  # no such day
    "Thu, 01 Feb 2024 25:00:00 GMT",  # no such hour
    "Thu, 01 Feb 2024 20:35:00 PST",  # Memento dates are GMT
    "",
    "Thu, 01 Feb 2024 20:35:00 GMT" * 400,
]


def test_a_malformed_accept_datetime_is_a_400_with_a_message(archived):
    client = archived.app.test_client()
    for value in MALFORMED_DATES:
        response = client.get(
            f"/timegate/{archived.url}",
            headers={"Accept-Datetime": value, "Accept": "application/json"},
        )
        assert response.status_code == 400, value[:40]
        assert "RFC 1123" in response.get_json()["error"]
        assert "Location" not in response.headers


NOT_ARCHIVED = [
    "http://example.org/never-archived",
    "not a url at all",
    "http://example.org/" + "a" * 10_000,
    "ftp://example.org/file",
    "http://",
]


def test_a_url_not_in_the_archive_is_a_404(archived):
    client = archived.app.test_client()
    for url in NOT_ARCHIVED:
        for prefix in ("/timemap/link/", "/timegate/"):
            response = client.get(prefix + url, headers={"Accept-Datetime": FIRST_HTTP})
            assert response.status_code == 404, (prefix, url[:80])
            assert "Link" not in response.headers and "Memento-Datetime" not in response.headers


def test_cr_lf_in_the_url_injects_no_header(archived):
    client = archived.app.test_client()
    injected = archived.url + "%0D%0ASet-Cookie:%20owned=1%0D%0AX-Injected:%201"
    for prefix in ("/timemap/link/", "/timegate/"):
        response = client.get(prefix + injected)
        assert response.status_code in (400, 404)
        assert "Set-Cookie" not in response.headers and "X-Injected" not in response.headers
        assert all("\r" not in v and "\n" not in v for _, v in response.headers.items())
    # The raw request target too (as a real server hands it over, still percent-encoded).
    response = client.get(
        "/timegate/" + injected, environ_overrides={"RAW_URI": "/timegate/" + injected}
    )
    assert response.status_code in (400, 404) and "Set-Cookie" not in response.headers


def test_capture_files_are_mementos_with_links_to_their_original(archived):
    client = archived.app.test_client()
    response = client.get(f"/captures/{archived.first}/files/index.html")
    assert response.status_code == 200
    assert response.headers["Memento-Datetime"] == FIRST_HTTP
    # The replay page (the memento URI) and the reader view say so too.
    for page in (f"/captures/{archived.first}/replay", f"/captures/{archived.first}/"):
        shown = client.get(page)
        assert shown.status_code == 200 and shown.headers["Memento-Datetime"] == FIRST_HTTP, page
    links = parse_links(response.headers["Link"])
    assert [uri for uri, _ in by_rel(links, "original")] == [archived.url]
    (timegate, _), = by_rel(links, "timegate")
    (timemap, params), = by_rel(links, "timemap")
    assert params["type"] == "application/link-format"
    # The links lead where they say: the TimeGate to the latest, the TimeMap to both captures.
    assert client.get(timegate).headers["Location"] == replay(archived.second)
    assert len(by_rel(parse_links(client.get(timemap).get_data(as_text=True)), "memento")) == 2


def test_only_successful_capture_pages_are_marked(archived):
    client = archived.app.test_client()
    missing = client.get(f"/captures/{archived.first}/files/no-such-file.html")
    assert missing.status_code == 404
    assert "Memento-Datetime" not in missing.headers
    assert "Memento-Datetime" not in client.get("/healthz").headers
