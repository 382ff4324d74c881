"""Capture replay in a real Chromium: the archived page looks like the original and runs nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from mirror.models import CapturePart
from mirror.pipeline import capture_source
from mirror.sources import add_source
from tests.conftest import make_settings
from tests.sites import seed_names


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised) and the local store: replay reads the local spool."""
    return make_settings(tmp_path, database_url)


def capture_article(app, site) -> int:
    """Capture a fixture article (an image, a stylesheet, inline scripts) through the pipeline."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        url = site.url(f"/articles/{seed_names()[0]}.html")
        source = add_source(session, url, 60).source
        session.commit()
    outcome = capture_source(rt, source.id)
    assert outcome.status == "ok", outcome
    return outcome.capture_id


def failed_requests(page) -> list[tuple[str, str]]:
    """(url, reason) of every request of ``page`` that fails from now on."""
    failed: list[tuple[str, str]] = []
    page.on("requestfailed", lambda request: failed.append((request.url, request.failure or "")))
    return failed


def test_replayed_capture_shows_its_image_and_style_and_runs_no_script(
    app, site, live_server, page, browser_log
):
    capture_id = capture_article(app, site)
    failed = failed_requests(page)

    page.goto(live_server.url(f"/captures/{capture_id}/offline.html"), wait_until="load")

    # The captured photo (a 1x1 PNG) decoded from the archive, not from the original site.
    photo = page.locator("figure img").first
    assert photo.get_attribute("src").startswith("assets/")
    assert photo.evaluate("img => img.complete && img.naturalWidth") > 0
    # site.css (`article { max-width: 40em }`) applied; without it max-width is "none".
    assert page.locator("article").evaluate("el => getComputedStyle(el).maxWidth") != "none"
    # The inline style too (`body { font-family: serif }`).
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily") == "serif"
    # Neither of the page's scripts ran: no tracker global, no document.write output.
    assert page.evaluate("() => typeof window.tracker") == "undefined"
    assert "injected by script" not in page.content()
    # Only the other site's tracker image was refused (by CSP); every archived file loaded.
    assert [url for url, _ in failed] == ["https://cdn.other.example/tracker.gif"]
    assert not [m for m in browser_log.console if "ERR_BLOCKED_BY_RESPONSE" in m]
    assert browser_log.errors == []


def test_replay_has_an_opaque_origin_so_it_cannot_reach_the_site(app, site, live_server, page):
    capture_id = capture_article(app, site)
    page.goto(live_server.url(f"/captures/{capture_id}/offline.html"))
    # The sandbox makes the page its own unique origin: no cookies, no storage of this site.
    assert page.evaluate("() => window.origin") == "null"
    assert page.evaluate(
        "() => { try { return document.cookie, 'readable'; } catch (e) { return e.name; } }"
    ) == "SecurityError"


def test_a_script_that_slipped_into_an_offline_copy_still_never_runs(
    app, site, live_server, page
):
    capture_id = capture_article(app, site)
    rt = app.extensions["samizdat"]
    # Whatever the offline rewriter might one day miss, the sandboxing CSP is the second wall.
    hostile = (
        b"<!doctype html><title>untouched</title><p id=p>quiet</p>"
        b"<script>document.title = 'ran'</script>"
        b"<img src=missing.png onerror=\"document.getElementById('p').textContent = 'ran'\">"
    )
    blob = rt.stores["local"].put(hostile)
    with rt.Session() as session:
        offline = session.scalars(
            select(CapturePart).where(
                CapturePart.capture_id == capture_id, CapturePart.role == "offline"
            )
        ).one()
        offline.sha256, offline.size = blob.sha256, blob.size
        session.commit()

    page.goto(live_server.url(f"/captures/{capture_id}/offline.html"), wait_until="load")

    assert page.title() == "untouched"
    assert page.text_content("#p") == "quiet"
