"""The replay page and a capture's files: what they serve, under which headers, and bad input."""

from __future__ import annotations

import lxml.html
import pytest
from babel.dates import format_date
from sqlalchemy import select

from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from tests.conftest import make_settings
from tests.sites import seed_names


@pytest.fixture
def settings(tmp_path, sqlite_url):
    """SQLite and the local store only: replay reads the local spool, nothing else."""
    return make_settings(tmp_path, sqlite_url)


def capture_path(app, site, path: str) -> Capture:
    """Capture ``path`` of the fixture site through the real pipeline; return the capture row."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = add_source(session, site.url(path), 60).source
        session.commit()
    outcome = capture_source(rt, source.id)
    with rt.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        session.expunge(capture)
        return capture


def test_replay_page_frames_the_offline_copy_under_a_banner(app, client, site):
    capture = capture_path(app, site, f"/articles/{seed_names()[0]}.html")
    response = client.get(f"/captures/{capture.id}/replay")

    assert response.status_code == 200 and response.mimetype == "text/html"
    doc = lxml.html.fromstring(response.data)
    banner = doc.get_element_by_id("replay-heading").getparent()
    text = " ".join(banner.text_content().split())
    assert "archived copy of " + capture.url in text
    # The time as readers read it (Babel, English here), and exact to the second for machines.
    assert f"{format_date(capture.fetched_at, 'medium', locale='en')} {capture.fetched_at:%H:%M:%S} UTC" in text
    assert banner.find(".//time").get("datetime") == capture.fetched_at.isoformat()
    assert capture.sha256 in text
    links = {a.text_content(): a.get("href") for a in banner.iter("a")}
    assert links["How to verify this copy"] == f"/captures/{capture.id}/#verify"
    assert links["Read the text only"] == f"/captures/{capture.id}/"
    assert links["Every capture of this page"] == f"/archive/{capture.source_id}"
    # The archived page sits below the banner, in a frame with every sandbox restriction on.
    (frame,) = doc.iter("iframe")
    assert banner.find(".//iframe") is None
    assert frame.get("src") == f"/captures/{capture.id}/files/offline.html"
    assert frame.get("sandbox") == ""  # present and empty: no allow-scripts, no allow-same-origin
    assert frame.get("referrerpolicy") == "no-referrer"
    assert frame.get("title").startswith("Archived copy of ")


def test_replay_page_runs_nothing_and_sets_no_cookie_even_for_an_archivist(
    app, client, site, login
):
    from tests.conftest import create_account

    capture = capture_path(app, site, f"/articles/{seed_names()[0]}.html")
    create_account(app, "ana")
    login(client, "ana")
    response = client.get(f"/captures/{capture.id}/replay")

    policy = response.headers["Content-Security-Policy"].split("; ")
    csp = {part.split()[0]: part.split()[1:] for part in policy}
    assert csp["default-src"] == ["'none'"] and csp["frame-src"] == ["'self'"]
    assert csp["style-src"] == ["'self'"] and csp["img-src"] == ["'self'"]
    assert "script-src" not in csp and "sandbox" not in csp
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "Set-Cookie" not in response.headers
    assert b"<script" not in response.data.lower()


def test_the_offline_copy_served_directly_carries_the_sandbox(app, client, site):
    capture = capture_path(app, site, "/replay/trap.html")
    response = client.get(f"/captures/{capture.id}/files/offline.html")

    assert response.status_code == 200 and response.mimetype == "text/html"
    policy = [part.strip() for part in response.headers["Content-Security-Policy"].split(";")]
    assert policy[0] == "sandbox" and "default-src 'none'" in policy  # no allow-* token at all
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert b"<script" not in response.data.lower() and b"live.example/x.png" not in response.data


def test_the_static_replay_segment_wins_over_file_names(app, client, site):
    capture = capture_path(app, site, f"/articles/{seed_names()[0]}.html")
    # "replay" is not a file of the capture; the old file rule must never see this path.
    assert client.get(f"/captures/{capture.id}/replay").status_code == 200
    assert client.get(f"/captures/{capture.id}/files/replay").status_code == 404


def test_an_unchanged_capture_replays_the_capture_it_matched(app, client, site):
    first = capture_path(app, site, f"/articles/{seed_names()[1]}.html")
    rt = app.extensions["samizdat"]
    again = capture_source(rt, first.source_id)
    assert again.status == "unchanged"
    response = client.get(f"/captures/{again.capture_id}/replay")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/captures/{first.id}/replay")


def test_a_capture_that_is_not_a_page_gets_a_download_instead_of_a_frame(app, client, site):
    capture = capture_path(app, site, "/doc.pdf")
    response = client.get(f"/captures/{capture.id}/replay")
    assert response.status_code == 200
    doc = lxml.html.fromstring(response.data)
    assert list(doc.iter("iframe")) == []
    download = doc.xpath("//a[starts-with(., 'Download')]")[0].get("href")
    assert client.get(download).headers["Content-Disposition"].startswith("attachment;")


def test_unknown_and_failed_captures_are_friendly_404_pages(app, client, site):
    failed = capture_path(app, site, "/status/500")
    paths = ("/captures/999/replay", f"/captures/{failed.id}/replay", "/captures/999/files/offline.html")
    for path in paths:
        response = client.get(path, headers={"Accept": "text/html"})
        assert response.status_code == 404, path
        assert response.mimetype == "text/html" and b"Traceback" not in response.data


ODD_TAILS = [
    "files/../../etc/passwd",
    "files/..%2F..%2Fetc%2Fpasswd",
    "files/%2e%2e/offline.html",
    "files/offline.html%00",
    "files/offline.html%0d%0aSet-Cookie:%20x=1",
    "files/" + "a" * 10_000,
    "%0d%0aLocation:%20http://evil.example/",
    "a" * 10_000,
    "replay%00",
    "9" * 40,
]


def test_odd_paths_are_refused_without_a_500(app, client, site):
    capture = capture_path(app, site, f"/articles/{seed_names()[0]}.html")
    for tail in ODD_TAILS:  # one capture for all of them: capturing is the slow part
        response = client.get(f"/captures/{capture.id}/{tail}", headers={"Accept": "text/html"})
        assert response.status_code in (400, 404), (tail[:60], response.status_code)
        assert "Set-Cookie" not in response.headers
        assert "evil.example" not in response.headers.get("Location", "")


def test_every_file_a_capture_lists_is_served_under_the_sandbox(app, client, site):
    capture = capture_path(app, site, f"/articles/{seed_names()[0]}.html")
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        stored = session.scalars(select(Capture).where(Capture.id == capture.id)).one()
        names = [p.name for p in stored.parts]
    assert {"offline.html", "index.html", "capture.warc.gz"} <= set(names)
    for name in names:
        response = client.get(f"/captures/{capture.id}/files/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Security-Policy"].startswith("sandbox;"), name
