"""Reader pages in English and Vietnamese: the language from ?lang= or Accept-Language (never a
cookie), kept by every link of a page, dates in the reader's language, and catalogues that are
complete and compile."""

from __future__ import annotations

import re
import subprocess
import sys
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from babel.dates import format_date
from babel.messages.pofile import read_po
from flask import render_template

from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat.app import create_app
from tests.conftest import make_settings
from tests.sites import seed_names

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "translations"
PYBABEL = [sys.executable, "-m", "babel.messages.frontend"]

# Strings a Vietnamese reader must see, and their English originals.
FRONT_VI = ("Những trang web bị chính quyền chặn, vẫn đọc được", "Tìm trong kho lưu trữ",
            "Tổng quan về kho lưu trữ")
FRONT_EN = ("Pages governments blocked, kept readable", "Search the archive",
            "The archive at a glance")
# Headers naming no language we have (or refusing Vietnamese): English, and never an error.
HOSTILE_ACCEPT_LANGUAGE = (
    "", ";;;", ",,,=", "*;q=x", "vi;q=0", "xx-YY", "x" * 8000, "en;q=0.1, vi;q=-1",
    "\x7f\x01", "q=1;vi", "ﬀ".encode().decode("latin-1"), "-, -vi, ;q=1",
)
# Odd headers that do name Vietnamese somewhere: whichever language they end up as, no error.
ODD_ACCEPT_LANGUAGE = ("vi;q=abc", "vi" + ";q=1" * 500, "vi-" + "x" * 5000, "VI-vn;Q=1.0")


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    """The committed catalogues compiled by pybabel itself (what `make install` runs)."""
    out = tmp_path_factory.mktemp("translations")
    for po in TRANSLATIONS.glob("*/LC_MESSAGES/messages.po"):
        target = out / po.relative_to(TRANSLATIONS).with_suffix(".mo")
        target.parent.mkdir(parents=True)
        result = subprocess.run([*PYBABEL, "compile", "-i", str(po), "-o", str(target)],
                                capture_output=True, text=True)
        assert result.returncode == 0 and target.stat().st_size > 0, result.stderr
    return out


@pytest.fixture
def app(tmp_path, sqlite_url, compiled):
    """The real app on SQLite with the local store, reading the freshly compiled catalogues."""
    application = create_app(make_settings(tmp_path, sqlite_url, translations_dir=str(compiled)))
    yield application
    application.extensions["samizdat"].dispose()


@pytest.fixture
def captured(app, site) -> tuple[int, int]:
    """A real capture of the fixture site's first article: (source id, capture id)."""
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source = add_source(session, site.url(f"/articles/{seed_names()[0]}.html"), 60,
                            country="VN").source
        session.commit()
        source_id = source.id
    return source_id, capture_source(rt, source_id).capture_id


def html_lang(page: str) -> str:
    """The page's <html lang>."""
    return re.search(r'<html lang="([^"]*)"', page).group(1)


def internal_links(page: str, attributes: str = "href|action") -> list[str]:
    """Every href (and form action) naming a page of this site (not stylesheets or downloads)."""
    urls = [unescape(u) for u in re.findall(rf'\s(?:{attributes})="([^"]*)"', page)]
    return [u for u in urls if (u.startswith("/") or u.startswith("?")) and not u.startswith("//")
            and "/static/" not in u and "/files/" not in u and not u.endswith(".wacz")]


def assert_keeps_vietnamese(page: str) -> None:
    """Every link carries lang=vi (the switcher's English link excepted); GET forms carry it too."""
    links = internal_links(page, "href")
    assert links
    for url in links:
        query = parse_qs(urlsplit(url).query)
        if query.get("lang") == ["en"] or url.startswith("/manage/"):
            continue  # the switcher back to English; the archivists' pages are English only
        assert query.get("lang") == ["vi"], url
    # A GET form drops its action's query string: a hidden field carries the language instead.
    for form in re.findall(r'<form[^>]*method="get".*?</form>', page, re.S):
        assert '<input type="hidden" name="lang" value="vi">' in form, form


def test_the_front_page_is_vietnamese_when_the_url_asks(app):
    response = app.test_client().get("/?lang=vi")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    page = response.get_data(as_text=True)
    assert html_lang(page) == "vi"
    for vi, en in zip(FRONT_VI, FRONT_EN):
        assert vi in page and en not in page
    # The switcher offers English for this same page, and marks Vietnamese as current.
    assert '<a href="/?lang=en" lang="en" hreflang="en">English</a>' in page
    assert '<strong lang="vi" aria-current="true">Tiếng Việt</strong>' in page
    assert_keeps_vietnamese(page)
    # The URL decides, so the page does not depend on any header a cache should vary on.
    assert "Accept-Language" not in response.headers.get("Vary", "")


def test_requests_sharing_one_app_context_each_speak_their_own_language(app):
    # The static export renders every page inside one app context (`flask archive publish`).
    client = app.test_client()
    with app.app_context():
        english = client.get("/?lang=en").get_data(as_text=True)
        vietnamese = client.get("/?lang=vi").get_data(as_text=True)
        with app.test_request_context("/?lang=en"):
            rendered_en = render_template("archive/base.html")
        with app.test_request_context("/?lang=vi"):
            rendered_vi = render_template("archive/base.html")
    assert html_lang(english) == "en" and FRONT_EN[0] in english
    assert html_lang(vietnamese) == "vi" and FRONT_VI[0] in vietnamese
    assert html_lang(rendered_en) == "en" and FRONT_EN[1] in rendered_en
    assert html_lang(rendered_vi) == "vi" and FRONT_VI[1] in rendered_vi


def test_the_header_links_keep_the_language_whichever_page_came_first(app, captured):
    source_id, _ = captured
    client = app.test_client()
    client.get("/")  # an English page first: the header template is compiled then
    for url in ("/?lang=vi", f"/archive/{source_id}?lang=vi", "/archive?lang=vi"):
        page = client.get(url).get_data(as_text=True)
        header = re.search(r'<header class="reader">.*?</header>', page, re.S).group(0)
        assert '<a class="brand" href="/?lang=vi">Samizdat</a>' in header, url
        assert '<a href="/archive?lang=vi">Kho lưu trữ</a>' in header, url


def test_accept_language_picks_vietnamese_and_caches_vary_on_it(app):
    client = app.test_client()
    for header in ("vi", "vi-VN,vi;q=0.9,en;q=0.5", "fr-FR, vi;q=0.7, en;q=0.3"):
        response = client.get("/", headers={"Accept-Language": header})
        assert response.status_code == 200 and "Set-Cookie" not in response.headers
        page = response.get_data(as_text=True)
        assert html_lang(page) == "vi" and FRONT_VI[0] in page, header
        assert "Accept-Language" in response.headers["Vary"]
    english = client.get("/", headers={"Accept-Language": "en-GB,vi;q=0.8"})
    assert html_lang(english.get_data(as_text=True)) == "en"
    # The URL wins over the header, both ways.
    assert html_lang(client.get("/?lang=en", headers={"Accept-Language": "vi"})
                     .get_data(as_text=True)) == "en"
    assert html_lang(client.get("/?lang=vi", headers={"Accept-Language": "en"})
                     .get_data(as_text=True)) == "vi"


def test_unknown_languages_and_hostile_headers_fall_back_to_english(app):
    client = app.test_client()
    for query in ("lang=xx", "lang=", "lang=vizz", "lang=" + "v" * 5000, "lang=%20en-x"):
        response = client.get(f"/?{query}")
        assert response.status_code == 200, query
        page = response.get_data(as_text=True)
        assert "Set-Cookie" not in response.headers
        assert html_lang(page) == "en" and FRONT_EN[0] in page, query
        assert "lang=" not in " ".join(u for u in internal_links(page) if "lang=en" not in u
                                       and "lang=vi" not in u)
    for header in HOSTILE_ACCEPT_LANGUAGE:
        response = client.get("/archive", headers={"Accept-Language": header})
        assert response.status_code == 200, header[:40]
        assert "Set-Cookie" not in response.headers
        assert html_lang(response.get_data(as_text=True)) == "en", header[:40]
    for header in ODD_ACCEPT_LANGUAGE:
        response = client.get("/archive", headers={"Accept-Language": header})
        assert response.status_code == 200 and "Set-Cookie" not in response.headers, header[:40]
        assert html_lang(response.get_data(as_text=True)) in ("en", "vi")


def test_a_vietnamese_timeline_shows_vietnamese_dates_and_links_keep_the_language(app, captured):
    source_id, capture_id = captured
    client = app.test_client()
    with app.extensions["samizdat"].Session() as session:
        fetched_at = session.get(Capture, capture_id).fetched_at
    response = client.get(f"/archive/{source_id}?lang=vi")
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    page = response.get_data(as_text=True)
    assert html_lang(page) == "vi"
    day = format_date(fetched_at, "medium", locale="vi")  # "25 thg 11, 2026"
    assert "thg" in day and f"{day} {fetched_at:%H:%M:%S} UTC" in page
    assert "Các bản lưu, mới nhất trước" in page and "bản đầu tiên" in page
    assert f'href="/captures/{capture_id}/?lang=vi"' in page
    assert f'href="/captures/{capture_id}/replay?lang=vi"' in page
    assert_keeps_vietnamese(page)

    english = client.get(f"/archive/{source_id}").get_data(as_text=True)
    assert f"{format_date(fetched_at, 'medium', locale='en')} {fetched_at:%H:%M:%S} UTC" in english
    assert "Captures, newest first" in english and f'href="/captures/{capture_id}/"' in english


def test_the_reader_view_and_replay_banner_speak_vietnamese_but_archived_text_stays(app, captured):
    source_id, capture_id = captured
    client = app.test_client()
    reader = client.get(f"/captures/{capture_id}/?lang=vi")
    assert reader.status_code == 200 and "Set-Cookie" not in reader.headers
    page = reader.get_data(as_text=True)
    assert html_lang(page) == "vi"
    assert "Kiểm chứng và mang về" in page and "Cách kiểm tra một bản sao" in page
    assert "<code>sha256sum TỆP</code>" in page and "<code>ipfs get CID</code>" in page
    assert "Trang đúng như máy chủ đã gửi (các byte gốc)" in page
    # The archived words are the page's own, whatever the reader's language.
    english_text = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    archived = re.findall(r'<p dir="auto">(.*?)</p>', english_text, re.S)
    assert archived and all(p in page for p in archived)
    assert_keeps_vietnamese(page)

    replay = client.get(f"/captures/{capture_id}/replay?lang=vi")
    banner = replay.get_data(as_text=True)
    assert replay.status_code == 200 and "Set-Cookie" not in replay.headers
    assert html_lang(banner) == "vi" and "Đây là bản lưu trữ của" in banner
    assert f'href="/archive/{source_id}?lang=vi"' in banner


def test_reader_errors_and_listing_counts_are_translated(app, captured):
    client = app.test_client()
    missing = client.get("/archive/999999?lang=vi", headers={"Accept": "text/html"})
    page = missing.get_data(as_text=True)
    assert missing.status_code == 404 and html_lang(page) == "vi"
    assert "Không tìm thấy" in page and "không có trang 999999 trong kho lưu trữ" in page
    bad = client.get("/archive?sort=nonsense&lang=vi").get_data(as_text=True)
    assert "cách sắp xếp phải là một trong: newest, oldest, title" in bad
    listing = client.get("/archive?lang=vi").get_data(as_text=True)
    assert "1 trang" in listing and "1 bản lưu" in listing and "Bản lưu mới nhất trước" in listing
    assert_keeps_vietnamese(listing)


def test_without_a_compiled_catalogue_pages_are_english(tmp_path, sqlite_url):
    empty = tmp_path / "no-catalogues"
    empty.mkdir()
    application = create_app(make_settings(tmp_path, sqlite_url, translations_dir=str(empty)))
    try:
        response = application.test_client().get("/?lang=vi", headers={"Accept-Language": "vi"})
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and html_lang(page) == "en"
        # Nothing to switch to: no switcher.
        assert FRONT_EN[0] in page and 'class="languages"' not in page and "Tiếng Việt" not in page
    finally:
        application.extensions["samizdat"].dispose()


def test_every_message_has_a_vietnamese_translation_and_the_template_is_current(tmp_path):
    with open(TRANSLATIONS / "messages.pot", "rb") as f:
        template = read_po(f)
    with open(TRANSLATIONS / "vi" / "LC_MESSAGES" / "messages.po", "rb") as f:
        vietnamese = read_po(f, locale="vi")
    ids = {m.id if isinstance(m.id, str) else m.id[0] for m in template if m.id}
    assert len(ids) > 100
    for message in template:
        if not message.id:
            continue
        translated = vietnamese.get(message.id)
        assert translated is not None, f"not in vi/messages.po: {message.id!r}"
        strings = translated.string if isinstance(translated.string, tuple) else (translated.string,)
        assert all(strings) and not translated.fuzzy, f"untranslated: {message.id!r}"
    # Placeholders (%(name)s) and the plural forms agree with the English.
    problems = [(m.id, errors) for m, errors in vietnamese.check()]
    assert not problems, problems
    # The template lists exactly what the code and templates mark today (`make messages`).
    fresh = tmp_path / "fresh.pot"
    result = subprocess.run(
        [*PYBABEL, "extract", "-F", "babel.cfg", "-k", "lazy_gettext", "--no-location",
         "-o", str(fresh), "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    with open(fresh, "rb") as f:
        extracted = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(f) if m.id}
    assert extracted == ids, ("run `make messages`", extracted ^ ids)
