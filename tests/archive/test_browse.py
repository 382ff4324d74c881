"""The reader's front page and /archive listing, over real captures of the fixture site, and the
archivist pages' move to /manage/ (old paths redirect)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select, update

from archive.index import index_new_captures

from mirror.importer import import_sources
from mirror.models import Capture, Source
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.browser.conftest import serve
from tests.conftest import create_account, make_settings
from tests.sites import seed_names

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
def settings(tmp_path, database_url):
    """SQLite or PostgreSQL (parametrised), local store only: the pages read the database."""
    return make_settings(tmp_path, database_url)


def mirror_archive(app, site) -> dict[str, int]:
    """Mirror the three seed articles (imported from a Citizen Lab list, so with categories),
    capture one twice (unchanged) and another with new content (changed); add a page that only
    ever failed and a deleted one. Returns source ids by role."""
    rt = app.extensions["samizdat"]
    urls = [site.url(f"/articles/{name}.html") for name in seed_names()[:3]]
    header = "url,category_code,category_description,date_added,source,notes\n"
    with rt.Session() as session:
        vn = header + f"{urls[0]},HUMR,Human Rights Issues,2024-01-01,,\n"
        vn += f"{urls[1]},NEWS,{HOSTILE} News Media,2024-01-01,,\n"
        import_sources(session, vn.encode(), "vn.csv", 60, collection="vietnam")
        th = header + f"{urls[2]},HUMR,Human Rights Issues,2024-01-01,,\n"
        import_sources(session, th.encode(), "th.csv", 60)
        failing = add_source(session, site.url("/status/500"), 60, country="VN").source
        gone = add_source(session, site.url("/plain.txt"), 60, country="DE").source
        session.commit()
        ids = {url: sid for sid, url in session.execute(select(Source.id, Source.url))}
    first, second, third = (ids[url] for url in urls)
    for source_id in (first, second, third, failing.id, gone.id, first):  # first twice: unchanged
        capture_source(rt, source_id)
    with rt.Session() as session:
        # The page behind `second` is rewritten: the site now serves other words at its address.
        session.get(Source, second).url = site.url("/vi/windows-1258.html")
        session.commit()
        capture_source(rt, second)
        session.get(Source, gone.id).deleted_at = utcnow()
        # An archived page's title is whatever its site wrote; it is text, never markup.
        session.execute(update(Capture).where(Capture.source_id == third).values(title=HOSTILE))
        # Older captures, so that sorting by last capture has something to sort.
        session.execute(
            update(Capture)
            .where(Capture.source_id == third)
            .values(fetched_at=utcnow() - timedelta(days=3))
        )
        session.commit()
    return dict(first=first, second=second, third=third, failing=failing.id, gone=gone.id)


def listed(html: str) -> list[int]:
    """The source ids of the listing's rows, in order (their timeline links)."""
    return [int(n) for n in re.findall(r'<h3 class="title"><a href="/archive/(\d+)">', html)]


def cells(table: str) -> str:
    """A table's text, cell after cell, tags dropped and entities read."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", table)).split())


def assert_public(response) -> None:
    """A reader page: 200, no cookie, the strict CSP (no script can run)."""
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert "Set-Cookie" not in response.headers
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp


def test_front_page_and_listing_show_the_mirrored_pages_with_escaped_text(app, client, site):
    ids = mirror_archive(app, site)

    front = client.get("/")
    assert_public(front)
    html = front.get_data(as_text=True)
    # Latest first: the changed page was captured last; the failed and deleted ones never show.
    assert listed(html) == [ids["second"], ids["first"], ids["third"]]
    assert "<script>" not in html and "alert(&#39;x&#39;)" in html
    assert html.count('role="img"') == 4  # four charts, each an image labelled by its title
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    category_svg = next(svg for svg in svgs if "per category" in svg)
    assert "&lt;script&gt;" in category_svg  # the hostile category name, escaped inside the SVG
    # Each chart's numbers as a table: two pages from VN, one from TH; HUMR twice.
    tables = re.findall(r"<table>.*?</table>", html, re.S)
    country = cells(tables[0])
    assert "Country Pages VN 2 TH 1" in country, country
    category = cells(tables[1])
    assert "HUMR — Human Rights Issues 2 NEWS — <script>" in category, category
    # Four successful captures today (two new, one unchanged, one changed), one three days ago.
    days = cells(tables[2])
    today = utcnow().date()
    assert f"{today.isoformat()} 4" in days and f"{today - timedelta(days=3)} 1 " in days
    changed = html.split('id="changed-heading"')[1]
    assert "1 page changed in the last 7 days" in changed
    assert f'href="/archive/{ids["second"]}"' in changed

    listing = client.get("/archive")
    assert_public(listing)
    page = listing.get_data(as_text=True)
    assert listed(page) == [ids["second"], ids["first"], ids["third"]]
    assert "<script>" not in page and "3 pages" in page
    first_row = page.split('<ol class="pages">')[1].split("</li>")[1]
    assert "Country: VN" in first_row and "HUMR — Human Rights Issues" in first_row
    assert "2 captures" in first_row and "Collection: vietnam" in first_row


def test_filters_sorting_search_and_pages_change_the_listing(app, client, site):
    ids = mirror_archive(app, site)
    first, second, third = ids["first"], ids["second"], ids["third"]

    def rows(query: str) -> list[int]:
        response = client.get(f"/archive?{query}")
        assert_public(response)
        return listed(response.get_data(as_text=True))

    assert rows("sort=oldest") == [third, first, second]
    assert rows("sort=title") == [third, first, second]  # "<script>…", "A new report…", "Tin…"
    assert rows("country=vn") == [second, first]  # codes are matched case-insensitively
    assert rows("country=TH") == [third]
    assert rows("collection=vietnam&sort=oldest") == [first, second]
    assert rows("category=HUMR") == [first, third]
    assert rows("category=HUMR&country=TH") == [third]
    assert rows("country=FR") == []
    # Facets count pages under the other filters: with TH chosen, VN still offers its 2 pages.
    html = client.get("/archive?country=TH").get_data(as_text=True)
    assert re.search(r'href="/archive\?country=VN">VN</a> <span class="count">\(2\)', html)
    assert 'aria-current="page">TH</a>' in html
    # Search: ranked full-text over the indexed text and titles, combined with the filters.
    index_new_captures(app.extensions["samizdat"])
    with app.extensions["samizdat"].Session() as session:
        title = session.scalar(select(Capture.title).where(Capture.source_id == first))
    word = max((w for w in title.split() if w.isalpha()), key=len)
    assert rows(f"q={word.upper()}")[0] == first
    assert first not in rows(f"q={word}&country=TH")  # the filter narrows the search
    assert set(rows(f"q={word}&country=TH")) <= {third}
    found = client.get(f"/archive?q={word}").get_data(as_text=True)
    assert "<mark>" in found and "result" in found
    for hostile in ("alert(", "100%25", "_", "%22unbalanced", "OR", "-", "NEAR(a b)"):
        assert client.get(f"/archive?q={hostile}").status_code == 200, hostile
    # Pages: one per page, the second is the second newest; links carry the filters.
    assert rows("per_page=1&page=2") == [first]
    html = client.get("/archive?per_page=1&page=2&country=VN").get_data(as_text=True)
    assert "Page 2 of 2" in html and 'href="/archive?country=VN&amp;per_page=1">Previous' in html


def test_bad_listing_input_is_clamped_or_refused_never_a_500(app, client, site):
    mirror_archive(app, site)
    for query, count in [
        ("page=-1", 3), ("page=abc", 3), ("per_page=1000000000", 3), ("per_page=0", 1),
        ("per_page=-5", 1), ("page=" + "9" * 30, 0), ("page=" + "9" * 5000, 3),
        ("q=%01%02%1b%7f", 3), ("q=" + "%22" * 40, 0), ("sort=", 3),
    ]:
        response = client.get(f"/archive?{query}")
        assert response.status_code == 200, query
        assert len(listed(response.get_data(as_text=True))) == count, query
    for query, reason in [
        ("country=%3Cscript%3E", "country must be a two-letter code"),
        ("collection=" + "c" * 101, "collection must be at most 100 characters"),
        ("category=" + "C" * 33, "category must be a code of at most 32 characters"),
        ("sort=random", "sort must be one of newest, oldest, title"),
        ("q=" + "x" * 10_000, "search text must be at most 1,000 characters"),
    ]:
        response = client.get(f"/archive?{query}")
        assert response.status_code == 400 and response.mimetype == "text/html", query
        assert reason in unescape(response.get_data(as_text=True)), query
        assert "<script>" not in response.get_data(as_text=True)
    assert client.get("/archive?q=%00").status_code == 400
    assert client.get("/archive?country=%ED%A0%80").status_code == 400  # bad UTF-8, not a code
    moved = client.get("/archive/?country=VN&q=a%0D%0Ab")
    assert moved.status_code == 301
    assert moved.headers["Location"] == "/archive?country=VN&q=a%0D%0Ab"


@pytest.fixture
def local_app(local_settings):
    """The app on SQLite only, for tests about routing and layout rather than the database."""
    application = create_app(local_settings)
    yield application
    application.extensions["samizdat"].dispose()


def test_old_archivist_paths_redirect_to_manage(local_app, login):
    client = local_app.test_client()
    # An empty archive (nothing captured yet) still has a front page and a listing.
    empty = client.get("/").get_data(as_text=True)
    assert "Nothing has been captured yet." in empty
    assert empty.count("Nothing to show yet.") == 2  # no bars; the day charts show their zeros
    assert "No mirrored page matches." in client.get("/archive").get_data(as_text=True)
    for old, new in [
        ("/archive/sources", "/manage/sources"),
        ("/archive/sources?q=vi%E1%BB%87t&page=2", "/manage/sources?q=vi%E1%BB%87t&page=2"),
        ("/archive/sources/import", "/manage/sources/import"),
        ("/archive/jobs?state=failed", "/manage/jobs?state=failed"),
        ("/archive/fragments?status=approved", "/manage/fragments?status=approved"),
        ("/archive/sources/1/x%0DSet-Cookie:%20a%25", "/manage/sources/1/x%0DSet-Cookie:%20a%25"),
    ]:
        response = client.get(old)
        assert (response.status_code, response.headers["Location"]) == (301, new), old
        assert "Set-Cookie" not in response.headers
    for old in ["/archive/sources", "/archive/sources/7/pause", "/archive/fragments/bulk",
                "/archive/fragments/abc/approve", "/archive/sources/import"]:
        response = client.post(old, data={"a": "b"})
        assert (response.status_code, response.headers["Location"]) == (308, "/manage" + old[8:])
    # A line feed never matches a path rule at all: a plain 404, nothing injected.
    injected = client.get("/archive/sources/1/x%0D%0ASet-Cookie:%20a=1")
    assert injected.status_code == 404 and "Set-Cookie" not in injected.headers
    assert client.delete("/archive/sources").status_code == 405
    assert client.get("/archive/elsewhere").status_code == 404

    # The new pages work, and a form posted to an old address still lands (method and body kept).
    create_account(local_app, "ana")
    csrf = login(client, "ana")
    assert client.get("/manage/", follow_redirects=True).request.path == "/manage/sources"
    form = {"url": "https://example.org/kept", "csrf_token": csrf}
    moved = client.post("/archive/sources", data=form)
    # What a browser does with a 308 (werkzeug's client cannot replay a body it has read).
    added = client.post(moved.headers["Location"], data=form, follow_redirects=True)
    assert added.status_code == 200 and added.request.path == "/manage/sources"
    assert "https://example.org/kept" in added.get_data(as_text=True)
    assert client.get("/archive/jobs", follow_redirects=True).status_code == 200
    assert client.get("/archive/fragments", follow_redirects=True).status_code == 200
    # After logging in, an archivist lands in the workspace; readers' pages stay cookie-free.
    assert 'href="/manage/sources"' in client.get("/manage/jobs").get_data(as_text=True)
    assert "Set-Cookie" not in client.get("/").headers


def test_front_page_and_listing_fit_a_360_px_phone_with_landmarks(local_app, site, chromium):
    ids = mirror_archive(local_app, site)
    with local_app.extensions["samizdat"].Session() as session:
        # A long unbroken URL is the usual thing that pushes a phone page sideways.
        session.get(Source, ids["first"]).url = "https://example.org/" + "x" * 300
        session.commit()
    live = serve(local_app)
    context = chromium.new_context(viewport={"width": 360, "height": 740})
    try:
        tab = context.new_page()
        for path in ("/", "/archive", "/archive?country=VN&sort=title"):
            tab.goto(live.url(path))
            assert tab.evaluate("() => document.scrollingElement.scrollWidth") <= 360, path
            # Landmarks as a screen reader finds them: one main, site navigation, a search.
            assert tab.get_by_role("main").count() == 1, path
            assert tab.get_by_role("navigation", name="Site").count() == 1, path
            assert tab.get_by_role("search").count() >= 1, path
            assert tab.get_by_role("banner").count() == 1, path
            assert tab.get_by_role("contentinfo").count() == 1, path
            assert tab.get_by_role("heading", level=1).count() == 1, path
        assert context.cookies() == []
    finally:
        context.close()
        live.server.shutdown()
        live.server.server_close()
