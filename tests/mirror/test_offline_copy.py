"""The offline copy is a closed document: nothing active, every URL into the capture or gone."""

from __future__ import annotations

import lxml.html
import pytest

from mirror.requisites import offline_page, rewrite_css
from tests.sites import REPLAY_TRAP_PAGE

BASE = "http://news.example/replay/trap.html"
ASSETS = {
    "http://news.example/static/site.css": "assets/0123456789abcdef0123.css",
    "http://news.example/static/photo.png": "assets/fedcba9876543210fedc.png",
}
URL_ATTRS = {
    "href", "src", "srcset", "action", "formaction", "background", "poster", "data", "ping",
}
CSS_FILE = ASSETS["http://news.example/static/site.css"]
PHOTO_FILE = ASSETS["http://news.example/static/photo.png"]


@pytest.fixture(scope="module")
def trap() -> lxml.html.HtmlElement:
    """The trap page's offline copy, parsed back."""
    return lxml.html.document_fromstring(offline_page(REPLAY_TRAP_PAGE, BASE, "utf-8", ASSETS))


def test_nothing_active_is_left(trap):
    active = ("script", "form", "input", "button", "iframe", "object", "embed", "base", "noscript")
    for tag in active:
        assert trap.findall(f".//{tag}") == [], tag
    handlers = [(el.tag, a) for el in trap.iter() for a in el.attrib if a.lower().startswith("on")]
    assert handlers == []
    refresh = [m for m in trap.iter("meta") if (m.get("http-equiv") or "").lower() == "refresh"]
    assert refresh == []
    assert "javascript:" not in lxml.html.tostring(trap, encoding="unicode").lower()


def test_every_url_points_into_the_capture_or_is_gone(trap):
    urls = [el.get(a) for el in trap.iter() for a in el.attrib if a.lower() in URL_ATTRS]
    assert sorted(urls) == sorted(ASSETS.values())  # the stylesheet and the photo, nothing else
    css = [el.get("style") for el in trap.iter() if el.get("style")]
    css += [style.text for style in trap.iter("style")]
    assert css and not any("live.example" in text or "url(" in text for text in css)
    # Only a link's title still names where it led: words for the reader, never a request.
    named = [(el.tag, a) for el in trap.iter() for a, v in el.attrib.items() if "live.example" in v]
    assert named == [("a", "title")]


def test_what_the_page_needs_to_look_like_itself_stays(trap):
    assert trap.findtext(".//title") == "Quiet page"
    assert trap.get_element_by_id("headline").text == "The blogger's last post"
    assert "h1 { color: rgb(0, 0, 128); }" in trap.find(".//style").text
    (link,) = trap.iter("link")
    assert link.get("rel") == "stylesheet" and link.get("href") == CSS_FILE
    assert trap.get_element_by_id("photo").get("src") == PHOTO_FILE
    # Our own policy is the first thing in <head>, after the charset.
    metas = trap.find("head").findall("meta")
    assert metas[0].get("charset") == "utf-8"
    csp = next(m.get("content") for m in metas if m.get("http-equiv") == "Content-Security-Policy")
    assert "script-src 'none'" in csp and "default-src 'none'" in csp


def test_main_and_in_page_links_survive_the_cleaner():
    page = b'<main><a href="#notes">notes</a><p id="notes" hidden>n</p></main>'
    doc = lxml.html.document_fromstring(offline_page(page, BASE, "utf-8", {}))
    assert doc.find(".//main") is not None
    assert doc.find(".//a").get("href") == "#notes"
    assert doc.get_element_by_id("notes").get("hidden") is not None


def resolve(ref):
    """The one captured file of these CSS tests."""
    return {"/static/photo.png": "assets/p.png"}.get(ref)


@pytest.mark.parametrize(
    "css",
    [
        "body { background: url(http://live.example/a.png) }",
        "body { background: URL( 'http://live.example/a.png' ) }",
        r"body { background: u\72l(http://live.example/a.png) }",  # an escape spells url(
        'body { background-image: image-set("http://live.example/a.png" 1x) }',
        "body { background-image: -webkit-image-set('http://live.example/a.png' 1x) }",
        '@import "http://live.example/a.css"; body { color: red }',
        "@font-face { font-family: x; src: url(http://live.example/f.woff2) format('woff2') }",
        "body { background: /* a */ url(http://live.example/a.png) }",
    ],
)
def test_css_can_hide_no_url(css):
    rewritten = rewrite_css(css, resolve)
    assert "live.example" not in rewritten, rewritten


def test_css_urls_of_captured_files_are_rewritten_not_dropped():
    css = "p { background: url(/static/photo.png) no-repeat; color: red }"
    rewritten = rewrite_css(css, resolve)
    assert rewritten == 'p { background:  url("assets/p.png")  no-repeat; color: red }'
