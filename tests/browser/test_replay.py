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

    page.goto(live_server.url(f"/captures/{capture_id}/files/offline.html"), wait_until="load")

    assert page.url == live_server.url(f"/captures/{capture_id}/files/offline.html")
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
    # Every archived file loaded; the other site's tracker image was dropped, so never tried.
    assert failed == []
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

    page.goto(live_server.url(f"/captures/{capture_id}/files/offline.html"), wait_until="load")

    assert page.title() == "untouched"
    assert page.text_content("#p") == "quiet"


def capture_trap(app, site) -> tuple[int, int]:
    """Capture the fixture site's trap page (tests/sites.py); return (capture id, source id)."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = add_source(session, site.url("/replay/trap.html"), 60).source
        session.commit()
        source_id = source.id
    outcome = capture_source(rt, source_id)
    assert outcome.status == "ok", outcome
    return outcome.capture_id, source_id


def record_traffic(context, live_server) -> tuple[list, list]:
    """Every request of ``context`` from now on as (frame, url), and every one that tried to
    leave the app: those are answered here (aborted), never sent."""
    requests: list[tuple[object, str]] = []
    escaped: list[str] = []
    context.on("request", lambda r: requests.append((r.frame, r.url)))

    def refuse(route) -> None:
        escaped.append(route.request.url)
        route.abort()

    context.route(lambda url: not url.startswith(live_server.base_url + "/"), refuse)
    return requests, escaped


# One database is enough: what is proven here happens in the browser, not in the tables.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_hostile_page_replayed_for_an_archivist_runs_nothing_and_reaches_nothing(
    app, site, live_server, page, browser_context, browser_log, browser_login
):
    capture_id, source_id = capture_trap(app, site)
    # An archivist reads the archive while logged in: the session cookie is there to be stolen.
    browser_login(page, "ana")
    assert any(c["name"] == "samizdat_session" for c in browser_context.cookies())
    browser_log.console.clear()
    requests, escaped = record_traffic(browser_context, live_server)
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))

    replay_url = live_server.url(f"/captures/{capture_id}/replay")
    offline_url = live_server.url(f"/captures/{capture_id}/files/offline.html")
    page.goto(replay_url, wait_until="load")
    frame = next(f for f in page.frames if f.url == offline_url)
    # A 0-second meta refresh fires right after load; give it its chance before judging.
    page.wait_for_timeout(500)

    # The banner, outside the archived document.
    banner = page.locator("section.replay-banner")
    assert "This is an archived copy of " + site.url("/replay/trap.html") in banner.inner_text()
    assert banner.get_by_role("link", name="How to verify this copy").get_attribute("href") == (
        f"/captures/{capture_id}/#verify"
    )
    assert banner.get_by_role("link", name="Read the text only").get_attribute("href") == (
        f"/captures/{capture_id}/"
    )
    assert banner.get_by_role("link", name="Every capture of this page").get_attribute("href") == (
        f"/archive/{source_id}"
    )
    # The archived page rendered, with its own style and photo from the archive.
    assert frame.title() == "Quiet page"
    assert frame.locator("h1").evaluate("el => getComputedStyle(el).color") == "rgb(0, 0, 128)"
    assert frame.locator("#photo").evaluate("img => img.complete && img.naturalWidth") > 0
    # No script ran: not the inline one, not the onerror handler, not the javascript: link.
    assert frame.text_content("#marker") == "Nothing ran here."
    assert frame.evaluate("() => document.documentElement.getAttribute('data-ran')") is None
    assert [m for m in browser_log.console if "ran" in m] == [] and browser_log.errors == []
    # Nothing navigated: no meta refresh, no script-driven move, in the page or the frame.
    assert page.url == replay_url and frame.url == offline_url
    assert sorted(navigations) == sorted([replay_url, offline_url])
    # Nothing left the archive, not even an attempt: the page, its stylesheet, and from the
    # frame only this capture's own files.
    assert escaped == []
    assert not [url for _, url in requests if "live.example" in url]
    assert {f for f, _ in requests} == {page.main_frame, frame}
    from_frame = [url for f, url in requests if f == frame]
    assert offline_url in from_frame and all(
        url.startswith(live_server.url(f"/captures/{capture_id}/files/")) for url in from_frame
    ), from_frame
    from_page = {url for f, url in requests if f == page.main_frame}
    assert from_page == {replay_url, live_server.url("/static/archive.css")}
    # The framed document has an opaque origin: the session is out of its reach, even for code
    # that did run there (the test's own, through the DevTools protocol).
    assert frame.evaluate("() => self.origin") == "null"
    assert frame.evaluate(
        "() => { try { return document.cookie, 'readable'; } catch (e) { return e.name; } }"
    ) == "SecurityError"
    assert frame.evaluate(
        "() => fetch('/api/tokens', {credentials: 'include'}).then(r => r.status, e => e.name)"
    ) == "TypeError"


# One database is enough: what is proven here happens in the browser, not in the tables.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_script_slipped_into_an_offline_copy_never_runs_inside_the_replay_page(
    app, site, live_server, page, browser_context, browser_log
):
    capture_id, _ = capture_trap(app, site)
    rt = app.extensions["samizdat"]
    # The first wall breached by hand: the capture's offline copy replaced by the raw trap page.
    from tests.sites import REPLAY_TRAP_PAGE

    blob = rt.stores["local"].put(REPLAY_TRAP_PAGE)
    with rt.Session() as session:
        offline = session.scalars(
            select(CapturePart).where(
                CapturePart.capture_id == capture_id, CapturePart.role == "offline"
            )
        ).one()
        offline.sha256, offline.size = blob.sha256, blob.size
        session.commit()
    tried: dict[str, str] = {}
    page.on("requestfailed", lambda r: tried.update({r.url: r.failure or ""}))
    requests, escaped = record_traffic(browser_context, live_server)

    replay_url = live_server.url(f"/captures/{capture_id}/replay")
    page.goto(replay_url, wait_until="load")
    frame = next(f for f in page.frames if f.url.endswith("/files/offline.html"))
    page.wait_for_timeout(500)

    # The second wall holds alone: the sandbox and the CSP stop the script, the handler, the
    # refresh and every load from the live web.
    assert frame.title() == "Quiet page"
    assert frame.text_content("#marker") == "Nothing ran here."
    assert page.url == replay_url and frame.url.endswith("/files/offline.html")
    assert [m for m in browser_log.console if "ran" in m and "Refused" not in m] == []
    # The raw page does try the live web (so this test can see a wall work) ...
    attempts = [url for _, url in requests if "live.example" in url]
    assert attempts
    # ... and the browser refuses each attempt itself, before any network: none is ever sent.
    assert escaped == []
    assert all(tried.get(url) == "csp" for url in attempts), tried
