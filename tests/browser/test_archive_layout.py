"""The archivist pages in a real Chromium: they fit a 360 px phone screen and cut long titles."""

from __future__ import annotations

import pytest

from mirror.jobs import enqueue, run_queued_jobs
from mirror.models import Source
from tests.conftest import make_settings
from tests.sites import seed_names

PHONE = {"width": 360, "height": 740}
# No spaces, no hyphens: a URL like this can only wrap where the layout allows breaking anywhere.
LONG_URL = "https://example.org/" + "verylongpathsegment" * 12 + "?id=" + "9" * 40


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only."""
    return make_settings(tmp_path, database_url)


def store_sources(app, count: int) -> None:
    """Sources with long URLs and long collection names, straight into the database."""
    with app.extensions["samizdat"].Session() as session:
        for n in range(count):
            session.add(
                Source(
                    url=f"{LONG_URL}{n}", interval_minutes=360, country="VN",
                    collection="a-rather-long-collection-name-for-vietnam", active=n % 2 == 0,
                )
            )
        session.commit()


def capture_article(app, site) -> None:
    """One real capture (and so a job and pending fragments) of a fixture article."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = Source(url=site.url(f"/articles/{seed_names()[0]}.html"), interval_minutes=60)
        session.add(source)
        session.flush()
        enqueue(session, source.id, "request", requested_by="ana")
        session.commit()
    run_queued_jobs(rt)


def overflow(page) -> int:
    """How many CSS pixels the document is wider than the viewport (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


@pytest.mark.parametrize(
    "path", ["/manage/sources", "/manage/sources?q=verylong&state=active", "/manage/jobs",
             "/manage/sources/import", "/manage/fragments"],
)
def test_archive_pages_fit_a_360_px_screen(
    app, site, live_server, page, browser_login, tmp_path, path
):
    store_sources(app, 3)
    capture_article(app, site)
    page.set_viewport_size(PHONE)
    browser_login(page)

    page.goto(live_server.url(path))

    page.screenshot(path=str(tmp_path / "page-360.png"), full_page=True)
    assert page.evaluate("() => window.innerWidth") == 360
    assert overflow(page) <= 0, f"{path} is {overflow(page)} px wider than a 360 px screen"


def test_a_fragment_card_cuts_a_long_title_to_one_line_and_keeps_it_whole_on_hover(
    app, site, live_server, page, browser_login
):
    capture_article(app, site)
    browser_login(page)

    page.goto(live_server.url("/manage/fragments"))

    titles = page.locator("article.fragment .source .title")
    assert titles.count() > 1
    first = titles.first
    full = first.get_attribute("title")
    assert len(full) > 200 and first.text_content().strip() == full  # the tooltip is the title
    box = first.evaluate(
        "el => ({cut: el.scrollWidth > el.clientWidth, lines: el.getClientRects().length,"
        " height: el.getBoundingClientRect().height,"
        " line: parseFloat(getComputedStyle(el).lineHeight),"
        " ellipsis: getComputedStyle(el).textOverflow})"
    )
    assert box["cut"] and box["ellipsis"] == "ellipsis"
    assert box["lines"] == 1 and box["height"] <= box["line"] * 1.5
