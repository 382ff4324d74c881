"""The Chromium driver (browser/chromium.py) on a loopback site of script-built and hostile pages.

Real Chromium (Debian's, through Playwright), no proxy: what the browser fetched is counted by
the fixture site itself. Time bounds are generous (the machine is shared and loaded).
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import tempfile
import time

import pytest
from PIL import Image

from browser.chromium import BrowserPool, live_processes_in_group, sandbox_status
from browser.records import PageLimits, ProxyEndpoint
from tests.browser_pages import (
    ARTICLE_PARAGRAPHS,
    DELAYED_TEXT,
    GROWING_PAGE_SIZE,
    GROWING_PAGES,
    HANG_TEXT,
    LAZY_IMAGES,
    TRICKLE_TEXT,
    BrowserPagesSite,
)
from tests.conftest import CHROMIUM
from tests.services import free_port, stop_process

AGENT = "Samizdat/1.0 (+https://samizdat.example/about; archiving for the public record)"
LIMITS = PageLimits(wall_seconds=45, quiet_ms=500, quiet_wait_seconds=15)


@pytest.fixture(scope="module")
def site():
    """The fixture site for the module."""
    served = BrowserPagesSite()
    yield served
    served.close()


@pytest.fixture(scope="module")
def pool():
    """One pool for the module: hostile pages share it with the pages that follow them."""
    browsers = BrowserPool(CHROMIUM, snapshot_seconds=15, watchdog_margin_seconds=10)
    yield browsers
    browsers.close()


def render(pool: BrowserPool, site: BrowserPagesSite, path: str, limits: PageLimits = LIMITS):
    """Render one page of the site, returning the page and the seconds it took."""
    started = time.monotonic()
    page = pool.render(site.url(path), None, limits, AGENT)
    return page, time.monotonic() - started


def assert_article_renders(pool: BrowserPool, site: BrowserPagesSite) -> None:
    """The script-built article renders whole: the proof that the pool is healthy again."""
    page, _ = render(pool, site, "/article")
    assert page.ended_by is None, page.notes
    for paragraph in ARTICLE_PARAGRAPHS:
        assert paragraph in page.dom_html


def dark_pixels(png: bytes) -> int:
    """How many pixels of a PNG are darker than mid-grey (text on a white page)."""
    with Image.open(io.BytesIO(png)) as image:
        histogram = image.convert("L").histogram()
    return sum(histogram[:128])


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, which must be one."""
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        return image.size


def chromium_descendants() -> list[int]:
    """Running Chromium processes started (through any depth) by this test process."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    mine, me = [], os.getpid()
    for pid in parents:
        ancestor = parents.get(pid)
        while ancestor and ancestor != me:
            ancestor = parents.get(ancestor)
        if ancestor == me:
            try:
                if "chromium" in os.readlink(f"/proc/{pid}/exe"):
                    mine.append(pid)
            except OSError:
                pass
    return mine


# -- script-built pages ------------------------------------------------------------------------


def test_the_rendered_dom_holds_every_paragraph_a_script_built_from_json(pool, site):
    page, _ = render(pool, site, "/article")

    assert page.ended_by is None, page.notes
    assert page.status == 200
    for paragraph in ARTICLE_PARAGRAPHS:
        assert paragraph in page.dom_html
    assert "Red river ledgers" in page.dom_html
    assert site.hits("/article.json")


def test_the_page_is_fetched_with_the_honest_user_agent(pool, site):
    render(pool, site, "/article")

    assert AGENT in site.agents


def test_scrolling_loads_every_lazy_image(pool, site):
    page, _ = render(pool, site, "/lazy")

    assert page.ended_by is None, page.notes
    assert page.scroll_steps > 0
    for n in range(LAZY_IMAGES):
        assert site.hits(f"/img/native-{n}.png"), f"native lazy image {n} never requested"
        assert site.hits(f"/img/observed-{n}.png"), f"observed image {n} never requested"


def test_a_list_that_grows_as_one_scrolls_is_taken_to_its_end(pool, site):
    page, _ = render(pool, site, "/growing")

    assert page.ended_by is None, page.notes
    for number in range(GROWING_PAGES):
        for i in range(GROWING_PAGE_SIZE):
            assert f"item-{number}-{i}<" in page.dom_html
    assert "the end" in page.dom_html


def test_a_body_fetched_after_a_delay_is_in_the_dom(pool, site):
    page, _ = render(pool, site, "/delayed")

    assert page.ended_by is None, page.notes
    assert DELAYED_TEXT in page.dom_html


def test_a_redirect_chain_is_followed_to_its_final_page(pool, site):
    page, _ = render(pool, site, "/redirect/1")

    assert page.final_url == site.url("/redirect/end")
    assert page.status == 200
    assert "The chain ends here." in page.dom_html
    assert site.hits("/redirect/3")


def test_the_screenshot_shows_the_text_and_the_thumbnail_is_its_first_screen(pool, site):
    article, _ = render(pool, site, "/article")
    blank, _ = render(pool, site, "/blank")

    width, height = png_size(article.screenshot_png)
    assert width == LIMITS.viewport_width
    assert 0 < height <= LIMITS.max_height_px
    # Black text on white: the article has many dark pixels, a blank page none.
    assert dark_pixels(blank.screenshot_png) == 0
    assert dark_pixels(article.screenshot_png) > 2000
    thumb_width, thumb_height = png_size(article.thumbnail_png)
    assert thumb_width == LIMITS.thumbnail_width
    assert thumb_height <= LIMITS.viewport_height * thumb_width / width + 1
    assert dark_pixels(article.thumbnail_png) > 0


def test_the_screenshot_of_a_tall_page_stops_at_the_height_limit(pool, site):
    limits = PageLimits(wall_seconds=45, quiet_wait_seconds=15, max_height_px=4000)
    page, _ = render(pool, site, "/lazy", limits)

    assert page.ended_by == "height"
    assert png_size(page.screenshot_png) == (limits.viewport_width, 4000)


# -- attack pages ------------------------------------------------------------------------------


def test_a_page_that_never_finishes_loading_ends_at_the_wall_clock_with_its_text(pool, site):
    limits = PageLimits(wall_seconds=8, quiet_wait_seconds=60)
    page, took = render(pool, site, "/trickle", limits)

    assert page.ended_by == "wall-clock"
    assert TRICKLE_TEXT in page.dom_html
    assert png_size(page.screenshot_png)[0] == limits.viewport_width
    assert took < 8 + pool.snapshot_seconds + pool.watchdog_margin_seconds
    assert_article_renders(pool, site)


def test_a_page_whose_network_never_goes_quiet_ends_at_the_quiet_wait(pool, site):
    limits = PageLimits(wall_seconds=60, quiet_wait_seconds=3)
    page, took = render(pool, site, "/trickle", limits)

    assert page.ended_by == "quiet-wait"
    assert TRICKLE_TEXT in page.dom_html
    assert took < 45


def test_a_popup_storm_is_closed_and_bounded(pool, site):
    limits = PageLimits(wall_seconds=20, quiet_wait_seconds=5, max_popups=10)
    page, took = render(pool, site, "/popups", limits)

    assert "Popups everywhere." in page.dom_html
    assert page.ended_by in (None, "popups")
    # Chromium's popup blocker stays on; whatever opens anyway is closed and counted.
    assert page.popups_closed <= limits.max_popups + 1
    assert len(site.hits("/popup-target")) <= limits.max_popups + 5
    assert took < 20 + pool.snapshot_seconds + pool.watchdog_margin_seconds
    assert_article_renders(pool, site)


def test_an_endless_scroll_ends_at_the_step_limit(pool, site):
    limits = PageLimits(wall_seconds=45, quiet_ms=300, max_scroll_steps=8, max_height_px=10**6)
    page, took = render(pool, site, "/endless", limits)

    assert page.ended_by == "scroll-steps"
    assert page.scroll_steps == 8
    assert "Entry 3" in page.dom_html
    assert took < 45 + pool.snapshot_seconds + pool.watchdog_margin_seconds
    assert_article_renders(pool, site)


def test_an_endless_scroll_ends_at_the_height_limit_and_the_screenshot_with_it(pool, site):
    limits = PageLimits(wall_seconds=45, quiet_ms=300, max_scroll_steps=1000, max_height_px=6000)
    page, _ = render(pool, site, "/endless", limits)

    assert page.ended_by == "height"
    assert png_size(page.screenshot_png) == (limits.viewport_width, 6000)


def test_an_alert_loop_is_dismissed_until_its_limit(pool, site):
    limits = PageLimits(wall_seconds=30, quiet_wait_seconds=5, max_dialogs=15)
    page, took = render(pool, site, "/alerts", limits)

    assert page.ended_by == "dialogs"
    assert "Dialogs forever." in page.dom_html
    assert took < 30 + pool.snapshot_seconds + pool.watchdog_margin_seconds
    assert_article_renders(pool, site)


def test_a_page_that_hangs_is_killed_by_the_watchdog_and_the_next_one_renders(site):
    with BrowserPool(CHROMIUM, snapshot_seconds=5, watchdog_margin_seconds=5) as browsers:
        limits = PageLimits(wall_seconds=8, quiet_wait_seconds=5)
        page, took = render(browsers, site, "/hang", limits)
        first_group = browsers.process_groups[0]

        assert page.ended_by == "wall-clock"
        assert any("killed" in note for note in page.notes), page.notes
        assert HANG_TEXT in page.dom_html  # the DOM taken before the script stopped answering
        assert took < 8 + 5 + 5 + 30  # the watchdog, its grace period, a loaded machine
        assert_article_renders(browsers, site)
        assert browsers.launches == 2
        assert live_processes_in_group(first_group) == []


# -- the browser process -----------------------------------------------------------------------


def test_the_browser_is_replaced_after_pages_per_browser_pages(site):
    with BrowserPool(CHROMIUM, pages_per_browser=2) as browsers:
        for _ in range(3):
            assert_article_renders(browsers, site)

        assert browsers.launches == 2
        assert live_processes_in_group(browsers.process_groups[0]) == []


def test_close_leaves_no_chromium_process(site):
    before = set(chromium_descendants())
    browsers = BrowserPool(CHROMIUM)
    assert_article_renders(browsers, site)
    assert set(chromium_descendants()) - before, "the pool's Chromium was not found running"

    browsers.close()

    assert set(chromium_descendants()) - before == set()
    for group in browsers.process_groups:
        assert live_processes_in_group(group) == []


def test_the_sandbox_decision_is_reported(pool, site):
    page, _ = render(pool, site, "/blank")
    decision = sandbox_status(CHROMIUM)

    assert pool.sandbox == decision or pool.sandbox.sandboxed == decision.sandboxed
    if os.geteuid() == 0:
        # Chromium refuses its sandbox for root; the page says it ran without one, and why.
        assert not decision.sandboxed
        assert any("no sandbox" in note and "root" in note for note in page.notes)
    else:
        assert decision.sandboxed, decision.reason


# -- through a proxy ---------------------------------------------------------------------------


@pytest.fixture
def http_proxy():
    """A real forwarding HTTP proxy (pproxy) on loopback, logging each connection it forwards."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(mode="w+", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pproxy", "-l", f"http://127.0.0.1:{port}", "-v"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                stop_process(proc)
                raise RuntimeError("pproxy did not start") from None
            time.sleep(0.1)
    yield ProxyEndpoint("127.0.0.1", port), proc, log
    stop_process(proc)
    log.close()


def test_with_a_proxy_every_request_goes_through_it_loopback_included(pool, site, http_proxy):
    endpoint, proc, log = http_proxy
    page = pool.render(site.url("/lazy"), endpoint, LIMITS, AGENT)

    assert page.ended_by is None, page.notes
    log.seek(0)
    forwarded = log.read()
    # Chromium sends loopback around a proxy unless told <-loopback>: here the proxy carried it.
    assert f"-> 127.0.0.1:{site.server.server_port}" in forwarded, forwarded
    assert site.hits("/img/observed-5.png")

    # With the proxy gone the browser does not fall back to a direct connection.
    stop_process(proc)
    before = len(site.hits())
    gone = pool.render(site.url("/article"), endpoint, LIMITS, AGENT)

    assert ARTICLE_PARAGRAPHS[0] not in gone.dom_html
    assert len(site.hits()) == before
    assert_article_renders(pool, site)


def test_the_default_height_limit_gives_a_screenshot_that_tall(pool, site):
    # 20,000 px is past Chromium's 16,384 px texture limit: the screenshot must still be whole.
    limits = PageLimits(wall_seconds=90, quiet_ms=300, max_scroll_steps=1000)
    page, _ = render(pool, site, "/endless", limits)

    assert page.ended_by == "height"
    assert png_size(page.screenshot_png) == (limits.viewport_width, limits.max_height_px)
    assert png_size(page.thumbnail_png)[0] == limits.thumbnail_width
    with Image.open(io.BytesIO(page.screenshot_png)) as image:
        bottom = image.crop((0, image.height - 2500, image.width, image.height)).convert("L")
        assert sum(bottom.histogram()[:128]) > 0, "the bottom of the screenshot holds no text"


# -- with the recording proxy ------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:GzipFile was opened for writing:FutureWarning")
def test_through_the_recording_proxy_every_lazy_image_is_in_the_warc(pool, site, tmp_path):
    from warcio.archiveiterator import ArchiveIterator

    from browser.proxy import RecordingProxy
    from browser.records import ProxyLimits
    from samizdat.addresses import address_is_public

    allowed = frozenset({f"127.0.0.1:{site.server.server_port}"})
    with RecordingProxy(tmp_path / "warcs", address_is_public, ProxyLimits(), allowed) as proxy:
        page = pool.render(site.url("/lazy"), proxy.endpoint, LIMITS, AGENT)
    responses = set()
    for path in proxy.warc_paths:
        with path.open("rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type == "response":
                    responses.add(record.rec_headers.get_header("WARC-Target-URI"))

    assert page.ended_by is None, page.notes
    assert site.url("/lazy") in responses
    for n in range(LAZY_IMAGES):
        assert site.url(f"/img/native-{n}.png") in responses
        assert site.url(f"/img/observed-{n}.png") in responses


def test_media_does_not_play_without_a_gesture(pool, site):
    page, _ = render(pool, site, "/autoplay")

    assert "autoplay refused: NotAllowedError" in page.dom_html


def test_a_download_is_refused_and_the_next_page_renders(pool, site):
    page, _ = render(pool, site, "/download")

    assert page.ended_by == "error"
    assert any("download" in note.lower() for note in page.notes), page.notes
    assert page.dom_html == ""
    assert_article_renders(pool, site)
