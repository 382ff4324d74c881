"""Public fragment and collection pages, oEmbed 1.0, the Atom feed, the snippet builder and the
self-host zip: what supporters and other sites use, with the bad inputs the embed issue lists."""

from __future__ import annotations

import io
import re
import json
import zipfile
from urllib.parse import parse_qs, urlsplit
from xml.etree import ElementTree as ET

import lxml.html
import pytest
from sqlalchemy import select

from embed.publish import publish_embed
from embed.sizes import SIZES
from fragments.models import PENDING, Fragment
from tests.embed.conftest import add_fragments

ATOM = "{http://www.w3.org/2005/Atom}"
EVIL = '<script>alert(1)</script><img src=x onerror=alert(2)> javascript:alert(3) </script>'


@pytest.fixture
def app(local_app):
    return local_app


@pytest.fixture
def client(app):
    return app.test_client()


def assert_no_injected_markup(html: str) -> None:
    """Parsed as a browser would: only our own script element, no event-handler attributes."""
    tree = lxml.html.fromstring(html)
    assert [s.get("src") for s in tree.iter("script")] == ["/embed/static/copy.js"]
    assert not [a for el in tree.iter() if isinstance(el.tag, str) for a in el.attrib if a.startswith("on")]
    assert not tree.xpath("//img")


def first_id(app, **where):
    with app.extensions["samizdat"].Session() as session:
        return session.scalar(select(Fragment.id).filter_by(**where).order_by(Fragment.id))


def publish(app):
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        return publish_embed(session, rt.settings)


def test_fragment_page_shows_attribution_verification_and_oembed_discovery(app, client):
    add_fragments(app, 2)
    fid = first_id(app)
    page = client.get(f"/fragments/{fid}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "a" * 64 in html and "https://example.org/vietnam/0" in html
    assert f'href="http://127.0.0.1:8000/oembed?url=http%3A%2F%2F127.0.0.1%3A8000%2Ffragments%2F{fid}&amp;format=json"' in html
    assert 'type="application/xml+oembed"' in html
    assert "Set-Cookie" not in page.headers


def test_pending_and_unknown_fragments_are_not_public(app, client):
    add_fragments(app, 1, status=PENDING)
    for fid in (first_id(app), "f" * 32, "not-an-id", "1" * 5000):
        assert client.get(f"/fragments/{fid}").status_code == 404


def test_oembed_json_is_a_rich_bare_iframe_within_maxwidth(app, client):
    add_fragments(app, 1)
    fid = first_id(app)
    url = f"http://127.0.0.1:8000/fragments/{fid}"
    body = client.get("/oembed", query_string={"url": url, "maxwidth": 250}).get_json()
    assert body["type"] == "rich" and body["version"] == "1.0"
    assert body["provider_name"] == "Samizdat" and body["cache_age"] > 0
    assert body["width"] <= 250
    assert body["html"].startswith("<iframe ") and body["html"].endswith("></iframe>")
    assert "<script" not in body["html"]
    assert f"/fragments/{fid}/card" in body["html"]
    card = client.get(f"/fragments/{fid}/card?size=card")
    assert card.status_code == 200 and "script-src" not in card.headers["Content-Security-Policy"]


def test_oembed_xml_and_collection_urls(app, client):
    add_fragments(app, 1)
    response = client.get("/oembed", query_string={
        "url": "http://127.0.0.1:8000/collections/vietnam", "format": "xml", "maxheight": 100})
    assert response.status_code == 200 and response.mimetype == "text/xml"
    root = ET.fromstring(response.data)
    assert root.tag == "oembed" and root.findtext("type") == "rich" and root.findtext("version") == "1.0"
    assert int(root.findtext("height")) <= 100
    assert "collection=vietnam" in root.findtext("html")


@pytest.mark.parametrize("query, status", [
    ({"url": "https://evil.example/fragments/" + "a" * 32}, 404),
    ({"url": "http://127.0.0.1:8000/sources"}, 404),
    ({"url": "http://127.0.0.1:8000/collections/unknown"}, 404),
    ({"url": "http://127.0.0.1:8000/fragments/" + "b" * 32}, 404),
    ({}, 400),
    ({"url": ""}, 400),
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "format": "yaml"}, 501),
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "maxwidth": "-5"}, 400),
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "maxwidth": str(10**9)}, 400),
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "maxheight": "abc"}, 400),
    # Digits to str.isdigit() that int() refuses, and more digits than int() will read.
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "maxwidth": "\u00b2"}, 400),
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "maxheight": "\u0663"}, 400),
    ({"url": "http://127.0.0.1:8000/collections/vietnam", "maxwidth": "9" * 5000}, 400),
    ({"url": "javascript:alert(1)"}, 404),
    # A lone surrogate as it arrives on the wire: its UTF-8 bytes, which are not valid UTF-8.
    ("url=http%3A%2F%2F127.0.0.1%3A8000%2Fcollections%2F%ED%A0%80", 404),
    ("url=http%3A%2F%2F127.0.0.1%3A8000%2Ffragments%2F%ED%A0%80&maxwidth=%ED%A0%80", 400),
])
def test_oembed_bad_requests_get_clear_4xx_or_501(app, client, query, status):
    add_fragments(app, 1)
    response = client.get("/oembed", query_string=query)
    assert response.status_code == status
    assert response.get_json()["error"]


def test_atom_feed_is_valid_and_keeps_markup_as_text(app, client):
    add_fragments(app, 3, text=EVIL, text_chars=150)
    response = client.get("/collections/vietnam/feed.atom")
    assert response.status_code == 200 and response.mimetype == "application/atom+xml"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    feed = ET.fromstring(response.data)
    assert feed.tag == f"{ATOM}feed"
    # RFC 4287 4.1.1: a feed has exactly one id, title and updated, and an author (here, feed-wide).
    for tag in ("id", "title", "updated", "author"):
        assert len(feed.findall(f"{ATOM}{tag}")) == 1
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 3
    for entry in entries:
        for tag in ("id", "title", "updated"):
            assert len(entry.findall(f"{ATOM}{tag}")) == 1
        content = entry.find(f"{ATOM}content")
        assert content.get("type") == "text" and content.text.startswith("<script>")
    assert b"<script>" not in response.data  # escaped in the XML, never markup
    assert client.get("/collections/nothing-here/feed.atom").status_code == 404


def test_builder_renders_escaped_code_for_each_format_without_javascript(app, client):
    add_fragments(app, 2, text=EVIL, text_chars=150)
    publish(app)
    response = client.get("/embed?collection=vietnam&size=banner&theme=dark&words=vi")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert html.count("<textarea") == 2
    assert "&lt;blockquote class=&#34;samizdat-fragment&#34; data-collection=&#34;vietnam&#34;" in html
    assert "data-theme=&#34;dark&#34;" in html and "data-size=&#34;banner&#34;" in html
    assert "integrity=&#34;sha384-" in html
    assert "Đọc trang đã lưu trữ" in html  # the widget's Vietnamese words in the fallback
    assert_no_injected_markup(html)
    assert "/embed/frame?collection=vietnam&amp;size=banner" in html


def test_builder_falls_back_on_unknown_choices_with_a_notice(app, client):
    add_fragments(app, 1)
    html = client.get("/embed?collection=<b>x</b>&size=huge&lang=zz").get_data(as_text=True)
    assert "No collection called" in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert 'value="card" selected' in html


def test_preview_page_holds_the_script_snippet(app, client):
    add_fragments(app, 1)
    publish(app)
    response = client.get("/embed/preview?collection=vietnam")
    html = response.get_data(as_text=True)
    assert '<blockquote class="samizdat-fragment" data-collection="vietnam"' in html
    assert re.search(r'src="http://127.0.0.1:8000/embed/embed\.[0-9a-f]{16}\.js"', html)


def test_selfhost_zip_holds_a_signed_pack_and_a_root_relative_embed_js(app, client):
    add_fragments(app, 4)
    add_fragments(app, 2, collection="iran", language="fa", start=50)
    publish(app)
    response = client.get("/embed/selfhost.zip?collection=vietnam")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    names = set(archive.namelist())
    assert {"samizdat/embed.js", "samizdat/frame.html", "samizdat/README.txt", "example.html",
            "samizdat/packs/vietnam/index.json", "samizdat/packs/key.json"} <= names
    assert not any(n.startswith("samizdat/packs/iran") for n in names)
    script = archive.read("samizdat/embed.js").decode()
    assert '"origins":[{"packs":"packs/"}]' in script
    assert "127.0.0.1:8000/embed/packs" not in script
    # Root-relative, so the example works on /2026/12/post.html too; the README says where it goes.
    assert 'src="/samizdat/embed.js"' in archive.read("example.html").decode()
    assert "/samizdat/embed.js" in archive.read("samizdat/README.txt").decode()


def test_selfhost_zip_before_any_publish_is_a_clear_404(client):
    response = client.get("/embed/selfhost.zip")
    assert response.status_code == 404 and b"not been published yet" in response.data


def test_published_embed_js_is_small_and_carries_the_key(app, client):
    add_fragments(app, 1)
    report = publish(app)
    script = client.get("/embed/embed.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    # 17 KiB: the log checks (checkpoint note, cosignatures, inclusion proofs) added ~4 KiB
    # minified, ~1.4 KiB gzipped, to the ~11 KiB it was; the checkpoint's rules (revoked pack
    # key, maximum age, no rollback within a page) ~1 KiB more, ~0.4 KiB gzipped.
    assert report.embed_js_bytes <= 17 * 1024
    assert report.key_id in script.get_data(as_text=True)
    assert "innerHTML" not in script.get_data(as_text=True)
    frame = client.get("/embed/frame")
    assert frame.status_code == 200 and "<script src=\"embed.js\"></script>" in frame.get_data(as_text=True)
    assert json.loads(client.get("/embed/packs/key.json").data)["keys"][0]["kid"] == report.key_id


def test_every_supporter_facing_response_sets_no_cookie_and_no_referrer(app, client):
    add_fragments(app, 2)
    publish(app)
    fid = first_id(app)
    shard = json.loads(json.loads(client.get("/embed/packs/all/index.json").data)["payload"])["shards"][0]
    urls = [
        "/embed", "/embed/preview", "/embed/frame", "/embed/embed.js", "/embed/selfhost.zip",
        "/embed/packs/all/index.json", f"/embed/packs/shards/{shard['sha256']}.json",
        "/embed/packs/key.json", "/api/fragments/random", "/api/fragments/random?format=text",
        f"/fragments/{fid}", f"/fragments/{fid}/card", "/collections/vietnam",
        "/collections/vietnam/feed.atom",
        "/oembed?url=http%3A%2F%2F127.0.0.1%3A8000%2Fcollections%2Fvietnam",
        "/api/fragments/random?collection=nowhere",  # errors too
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code in (200, 404), url
        assert "Set-Cookie" not in response.headers, url
        assert response.headers["Referrer-Policy"] == "no-referrer", url
    for url in ("/embed/packs/all/index.json", "/api/fragments/random", "/collections/vietnam/feed.atom",
                "/oembed?url=http%3A%2F%2F127.0.0.1%3A8000%2Fcollections%2Fvietnam"):
        assert client.get(url).headers["Access-Control-Allow-Origin"] == "*", url


def code_blocks(html: str) -> list[str]:
    """The text of every <code> element, as a supporter reads it on the builder."""
    return [c.text_content() for c in lxml.html.fromstring(html).iter("code")]


def test_builder_for_all_collections_gives_data_urls_without_a_dangling_question_mark(app, client):
    add_fragments(app, 2)
    publish(app)
    codes = code_blocks(client.get("/embed?collection=all").get_data(as_text=True))
    assert "http://127.0.0.1:8000/api/fragments/random" in codes
    assert not [c for c in codes if c.endswith("?")], codes
    text_url = next(c for c in codes if "format=text" in c)
    assert text_url == "http://127.0.0.1:8000/api/fragments/random?format=text"
    answer = client.get(text_url.removeprefix("http://127.0.0.1:8000"))
    assert answer.status_code == 200 and answer.mimetype == "text/plain"


def test_oembed_code_from_the_builder_carries_the_chosen_size_theme_and_words(app, client):
    add_fragments(app, 2)
    publish(app)
    html = client.get("/embed?collection=vietnam&size=banner&theme=dark&words=vi&fragment_lang=vi"
                      ).get_data(as_text=True)
    page = next(c for c in code_blocks(html) if "/collections/vietnam" in c)
    body = client.get("/oembed", query_string={"url": page}).get_json()
    src = parse_qs(urlsplit(lxml.html.fromstring(body["html"]).get("src")).query)
    assert src == {"collection": ["vietnam"], "lang": ["vi"], "size": ["banner"],
                   "theme": ["dark"], "words": ["vi"]}
    assert (body["width"], body["height"]) == SIZES["banner"]
    # A platform that discovers the endpoint from the page itself gets the same choice.
    discovered = lxml.html.fromstring(client.get(page.removeprefix("http://127.0.0.1:8000")).data)
    href = discovered.xpath('//link[@type="application/json+oembed"]/@href')[0]
    assert parse_qs(urlsplit(parse_qs(urlsplit(href).query)["url"][0]).query)["size"] == ["banner"]
    # The consumer's limits still win over the chosen size, and unknown values fall back.
    narrow = client.get("/oembed", query_string={"url": page, "maxwidth": 320}).get_json()
    assert narrow["width"] <= 320 and "theme=dark" in narrow["html"]
    odd = client.get("/oembed", query_string={
        "url": "http://127.0.0.1:8000/collections/vietnam?size=huge&theme=%3Cb%3E&words=zz&fragment_lang=x"})
    assert odd.status_code == 200
    assert parse_qs(urlsplit(lxml.html.fromstring(odd.get_json()["html"]).get("src")).query) == {
        "collection": ["vietnam"], "size": ["card"], "theme": ["light"], "words": ["en"]}


def test_builder_speaks_the_readers_language_and_keeps_it(app, client):
    add_fragments(app, 2)
    publish(app)
    html = client.get("/embed?lang=vi").get_data(as_text=True)
    tree = lxml.html.fromstring(html)
    assert tree.get("lang") == "vi"
    assert "Đưa những lời bị kiểm duyệt lên trang của bạn" in html and "Mọi bộ sưu tập" in html
    assert tree.xpath('//form[contains(@class, "builder")]//input[@name="lang"]/@value') == ["vi"]
    assert tree.xpath('//a[@class="brand"]/@href') == ["/?lang=vi"]
    assert "data-words=&#34;vi&#34;" in html  # the widget's words follow the page's language
    # Choosing the fragments' language is another parameter: it leaves the page in English.
    english = client.get("/embed?fragment_lang=vi").get_data(as_text=True)
    assert lxml.html.fromstring(english).get("lang") == "en"
    assert "Put censored words on your site" in english and "data-lang=&#34;vi&#34;" in english


def test_builder_without_s3_or_ipfs_says_the_snippet_has_a_single_origin(app, client):
    add_fragments(app, 1)
    publish(app)
    html = client.get("/embed").get_data(as_text=True)
    assert html.count("&lt;script async src=") == 1
    assert "publishes no copy of the widget on S3 or IPFS" in html
