"""The embed widget in a real browser: Debian's Chromium on a loopback "blog", against the real app,
moto's S3 server and the js-ipfs gateway. Origins are blocked with Playwright routes."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import time
import zipfile
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from functools import partial

import lxml.html
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from werkzeug.serving import make_server

from embed.packs import PACK_FORMAT, canonical_json, signed_envelope
from embed.publish import publish_embed, subresource_integrity
from embed.signing import PackSigner
from embed.sizes import SIZES
from fragments.curation import Reviewer, review, review_pending
from fragments.models import APPROVED, REJECTED, Fragment
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import make_settings
from tests.embed.conftest import add_fragments
from tests.services import free_port
from tests.sites import seed_names

SHADOW_TEXT = """() => { const h = document.querySelector('.samizdat-embed');
  if (!h || !h.shadowRoot) return null;
  const q = h.shadowRoot.querySelector('blockquote');
  return {text: q.querySelector('.text').textContent,
          source: q.querySelector('cite a') && q.querySelector('cite a').href,
          archived: q.querySelector('a.archived') && q.querySelector('a.archived').href}; }"""


@pytest.fixture
def browser(chromium):
    """The session's Chromium (tests/conftest.py): Playwright runs one instance per process."""
    return chromium


class CountingApp:
    """WSGI wrapper counting requests, to prove a warm page view never reaches the app."""

    def __init__(self, app):
        self.app, self.paths = app, []

    def __call__(self, environ, start_response):
        self.paths.append(environ.get("PATH_INFO", ""))
        return self.app(environ, start_response)


@contextmanager
def serving(tmp_path, database_url, s3_server, ipfs_node, bucket, site):
    """The app served on loopback with S3 and IPFS on, two approved articles, packs published."""
    port = free_port()
    settings = make_settings(
        tmp_path, database_url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket,
        ipfs_api=ipfs_node.api_multiaddr, ipfs_gateways=ipfs_node.gateway_url,
        public_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    rt = app.extensions["samizdat"]
    for name in seed_names()[:2]:
        with rt.Session() as session:
            source_id = add_source(session, site.url(f"/articles/{name}.html"), 60).source.id
            session.commit()
        capture_source(rt, source_id)
    with rt.Session() as session:
        review_pending(session, APPROVED, Reviewer("arch"))
        session.commit()
        texts = {f.text: f.source_url for f in session.query(Fragment).filter_by(status=APPROVED)}
        report = publish_embed(session, settings)
    assert not report.failures, report.failures
    counting = CountingApp(app)
    server = make_server("127.0.0.1", port, counting, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield type("Live", (), {"url": settings.public_url, "settings": settings, "texts": texts, "app": app,
                            "script": report.embed_js_versioned,
                            "report": report, "counter": counting,
                            "s3": f"{settings.s3_public_base}/embed", "gateway": ipfs_node.gateway_url})
    server.shutdown()
    rt.dispose()


@pytest.fixture
def live(tmp_path, sqlite_url, s3_server, ipfs_node, bucket, site):
    """The app served on loopback with S3 and IPFS on, two approved articles, packs published."""
    with serving(tmp_path, sqlite_url, s3_server, ipfs_node, bucket, site) as value:
        yield value


@pytest.fixture
def blog(tmp_path):
    """A static "blog" on its own loopback origin; ``blog.page(html)`` returns the page's URL."""
    root = tmp_path / "blog"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()

    class Blog:
        url = f"http://127.0.0.1:{server.server_port}"

        def page(self, body: str, name: str = "post.html") -> str:
            (root / name).write_text(f"<!doctype html><html><head><meta charset=utf-8>"
                                     f"<style>blockquote{{color:red!important}} p{{display:none}}</style>"
                                     f"</head><body><h1>My blog</h1>{body}</body></html>")
            return f"{self.url}/{name}"

    yield Blog()
    server.shutdown()


STATIC = ('<blockquote class="samizdat-fragment" data-collection="all">'
          '<p>STATIC GENUINE FRAGMENT</p><cite><a href="https://example.org/">source</a></cite></blockquote>')


def script_snippet(live, *srcs):
    tags = "".join(f'<script async src="{src}" integrity="{live.report.embed_js_integrity}" '
                   f'crossorigin="anonymous"></script>' for src in srcs)
    return STATIC + tags


def shown(page):
    page.wait_for_function(f"({SHADOW_TEXT})() !== null", timeout=15000)
    return page.evaluate(SHADOW_TEXT)


def test_script_snippet_shows_a_verified_fragment_with_its_source(browser, live, blog):
    page = browser.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    got = shown(page)
    assert got["text"] in live.texts
    assert got["source"] == live.texts[got["text"]]
    assert got["archived"].startswith(f"{live.url}/captures/")
    # The host page's "p {display:none}" and red blockquotes cannot reach into the shadow root.
    assert page.evaluate("""() => getComputedStyle(document.querySelector('.samizdat-embed')
        .shadowRoot.querySelector('.text')).display""") == "block"
    page.close()


def test_without_javascript_the_static_fragment_stays(browser, live, blog):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    assert page.locator("blockquote.samizdat-fragment").count() == 1
    assert page.locator(".samizdat-embed").count() == 0
    assert "STATIC GENUINE FRAGMENT" in page.content()
    context.close()


def test_with_the_app_blocked_packs_come_from_s3_then_from_the_ipfs_gateway(browser, live, blog):
    for blocked, expected in (([live.url], live.s3), ([live.url, live.s3], live.gateway)):
        context = browser.new_context()
        fetched = []
        context.on("requestfinished", lambda r: fetched.append(r.url))
        for origin in blocked:
            context.route(f"{origin}/**/packs/**", lambda route: route.abort())
        page = context.new_page()
        # embed.js itself still comes from the app here; its own fallback is tested below.
        page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
        assert shown(page)["text"] in live.texts
        assert any(u.startswith(expected) and "/shards/" in u for u in fetched), fetched
        context.close()


def test_a_pack_with_one_changed_byte_is_refused_and_the_next_origin_used(browser, live, blog):
    context = browser.new_context()
    fetched = []
    context.on("requestfinished", lambda r: fetched.append(r.url))

    def tamper(route):
        body = route.fetch().body()
        envelope = json.loads(body)
        # One byte that changes nothing a client would use: only the signature can catch it.
        envelope["payload"] = envelope["payload"].replace('"language":null', '"language":"xx"', 1)
        assert envelope["payload"].encode() != json.loads(body)["payload"].encode()
        route.fulfill(body=json.dumps(envelope), content_type="application/json",
                      headers={"Access-Control-Allow-Origin": "*"})

    context.route(f"{live.url}/embed/packs/all/index.json", tamper)
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    assert shown(page)["text"] in live.texts
    assert not any(u.startswith(f"{live.url}/embed/packs/shards/") for u in fetched)
    assert any(u.startswith(live.s3) and "/shards/" in u for u in fetched)
    context.close()


def test_embed_js_loads_from_its_second_origin_when_the_first_is_blocked(browser, live, blog):
    context = browser.new_context()
    context.route(f"{live.url}/**", lambda route: route.abort())
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}", f"{live.s3}/{live.script}")))
    assert shown(page)["text"] in live.texts
    context.close()


def test_iframe_snippet_shows_a_fragment(browser, live, blog):
    page = browser.new_page()
    page.goto(blog.page(f'<iframe src="{live.url}/embed/frame?collection=all&size=card" '
                        f'width="320" height="260" title="Censored words"></iframe>'))
    frame = page.frame_locator("iframe")
    frame.locator(".samizdat-embed").wait_for(timeout=15000)
    got = page.frames[1].evaluate(SHADOW_TEXT)
    assert got["text"] in live.texts
    page.close()


def test_a_warm_page_view_makes_no_request_to_the_app(browser, live, blog):
    context = browser.new_context()
    page = context.new_page()
    url = blog.page(script_snippet(live, f"{live.url}/embed/{live.script}"))
    page.goto(url)
    shown(page)
    before = len(live.counter.paths)
    second = context.new_page()
    second.goto(url)
    assert shown(second)["text"] in live.texts
    assert len(json.loads(json.loads((live.settings.public_path / "packs/all/index.json")
                                     .read_bytes())["payload"])["shards"]) == 1
    assert live.counter.paths[before:] == []
    context.close()


def test_the_selfhost_zip_works_from_a_plain_static_server_with_every_other_origin_blocked(
        browser, live, blog, tmp_path):
    data = live.app.test_client().get("/embed/selfhost.zip").data
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "blog")
    example = (tmp_path / "blog" / "example.html").read_text()
    context = browser.new_context()
    fetched = []
    context.on("request", lambda r: fetched.append(r.url))
    # Everything but the supporter's own host is unreachable.
    context.route(lambda url: not url.startswith(blog.url), lambda route: route.abort())
    page = context.new_page()
    page.goto(blog.page(example.split("<title>Samizdat example</title>", 1)[1], name="selfhosted.html"))
    assert shown(page)["text"] in live.texts
    assert fetched and all(u.startswith(blog.url) for u in fetched), fetched
    context.close()


def test_when_every_origin_fails_the_last_good_pack_is_shown(browser, live, blog):
    context = browser.new_context()
    page = context.new_page()
    url = blog.page(script_snippet(live, f"{live.url}/embed/{live.script}"))
    page.goto(url)
    shown(page)
    # Now every pack origin is blocked (embed.js itself comes from the browser cache or the app).
    for origin in (live.url, live.s3, live.gateway):
        context.route(f"{origin}/**/packs/**", lambda route: route.abort())
        context.route(f"{origin}/ipfs/**", lambda route: route.abort())
    second = context.new_page()
    second.goto(url)
    assert shown(second)["text"] in live.texts
    context.close()


def test_a_replayed_older_index_is_refused(browser, live, blog):
    rt = live.app.extensions["samizdat"]
    old_index = (live.settings.public_path / "packs/all/index.json").read_bytes()
    with rt.Session() as session:
        publish_embed(session, live.settings)  # a newer serial, which the first view sees
    context = browser.new_context()
    page = context.new_page()
    url = blog.page(script_snippet(live, f"{live.url}/embed/{live.script}"))
    page.goto(url)
    shown(page)
    fetched = []
    context.on("requestfinished", lambda r: fetched.append(r.url))
    # An attacker (or a stale mirror) answers with the older, validly signed index.
    context.route(f"{live.url}/embed/packs/all/index.json",
                  lambda route: route.fulfill(body=old_index, content_type="application/json",
                                              headers={"Access-Control-Allow-Origin": "*",
                                                       "Cache-Control": "no-store"}))
    context.route(f"{live.url}/embed/packs/shards/**", lambda route: route.abort())
    second = context.new_page()
    second.goto(url)
    assert shown(second)["text"] in live.texts
    assert any(u.startswith(live.s3) and u.endswith("/all/index.json") for u in fetched), fetched
    context.close()


def test_an_origin_slower_than_two_seconds_is_passed_over(browser, live, blog):
    context = browser.new_context()
    fetched = []
    context.on("requestfinished", lambda r: fetched.append(r.url))

    def slow(route):
        time.sleep(3)
        route.continue_()

    context.route(f"{live.url}/embed/packs/**", slow)
    page = context.new_page()
    started = time.monotonic()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    assert shown(page)["text"] in live.texts
    assert any(u.startswith(live.s3) and "/shards/" in u for u in fetched), fetched
    assert time.monotonic() - started < 12
    context.close()


def test_snippets_pasted_before_a_key_rotation_keep_working_during_it(browser, live, blog, tmp_path):
    rt = live.app.extensions["samizdat"]
    retired = tmp_path / "retired.pem"
    live.settings.embed_signing_key_path.rename(retired)
    with rt.Session() as session:
        report = publish_embed(session, live.settings.replace(embed_previous_keys=str(retired)))
    assert report.embed_js_versioned != live.script  # the new embed.js carries the new key
    page = browser.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))  # the old one
    assert shown(page)["text"] in live.texts
    page.close()


# Chromium has Ed25519 in WebCrypto; this makes it behave like a browser that does not.
NO_ED25519 = """(() => { const real = crypto.subtle.importKey.bind(crypto.subtle);
  crypto.subtle.importKey = (fmt, key, alg, ...rest) =>
    (alg && (alg === 'Ed25519' || alg.name === 'Ed25519'))
      ? Promise.reject(new DOMException('not supported', 'NotSupportedError')) : real(fmt, key, alg, ...rest); })()"""


def test_without_ed25519_packs_from_an_http_origin_are_never_believed(browser, live, blog):
    context = browser.new_context()
    context.add_init_script(NO_ED25519)
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    page.wait_for_timeout(3000)  # every origin tried and refused (none is the app over https)
    assert page.locator(".samizdat-embed").count() == 0
    assert "STATIC GENUINE FRAGMENT" in page.content()
    context.close()


def test_rtl_fragments_are_laid_out_right_to_left(browser, live, blog):
    page = browser.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    shown(page)
    direction = page.evaluate("""() => { const h = document.querySelector('.samizdat-embed');
        const p = h.shadowRoot.querySelector('.text'); p.textContent = 'سجن المدون بسبب مقالاته';
        return getComputedStyle(p).direction; }""")
    assert direction == "rtl"
    page.close()


def test_a_pack_listed_in_tables_works_and_a_changed_table_is_refused(browser, live, blog):
    rt = live.app.extensions["samizdat"]
    with rt.Session() as session:
        publish_embed(session, live.settings, shard_bytes=3000, index_shards=2)
    index = json.loads(json.loads((live.settings.public_path / "packs/all/index.json").read_bytes())["payload"])
    assert index.get("tables"), "the fixture should need tables"
    tables = {t["sha256"] for t in index["tables"]}
    context = browser.new_context()
    fetched = []
    context.on("requestfinished", lambda r: fetched.append(r.url))

    def tamper(route):
        if not any(t in route.request.url for t in tables):
            return route.continue_()
        body = route.fetch().body().replace(b'"count":', b'"count": ', 1)
        route.fulfill(body=body, content_type="application/json",
                      headers={"Access-Control-Allow-Origin": "*"})

    context.route(f"{live.url}/embed/packs/shards/**", tamper)
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}")))
    assert shown(page)["text"] in live.texts
    # The app's tables were refused; the table and its shard came from S3.
    assert any(u.startswith(live.s3) and any(t in u for t in tables) for u in fetched), fetched
    context.close()


def builder_snippet(live, query: str = "") -> tuple[str, list[str], str]:
    """The script snippet exactly as the builder gives it: (code, its script srcs, integrity)."""
    html = live.app.test_client().get(f"/embed{query}").get_data(as_text=True)
    code = lxml.html.fromstring(html).get_element_by_id("code-script").text_content()
    scripts = lxml.html.fragment_fromstring(code, create_parent="div").iter("script")
    scripts = list(scripts)
    return code, [s.get("src") for s in scripts], scripts[0].get("integrity")


def test_the_builders_ipfs_copy_of_embed_js_is_named_by_cid_and_serves_the_pinned_bytes(
        browser, live, blog):
    code, srcs, integrity = builder_snippet(live)
    # With S3 and IPFS both on, the snippet offers the app, S3 and the gateway, in that order.
    assert srcs[:2] == [f"{live.url}/embed/{live.script}", f"{live.s3}/{live.script}"]
    assert len(srcs) == 3 and srcs[2].startswith(f"{live.gateway}/ipfs/"), srcs
    assert "/ipns/" not in code
    cid = srcs[2].removeprefix(f"{live.gateway}/ipfs/").split("/")[0]
    assert srcs[2] == f"{live.gateway}/ipfs/{cid}/{live.script}"
    answer = requests.get(srcs[2], timeout=30)
    assert answer.status_code == 200
    assert subresource_integrity(answer.content) == integrity == live.report.embed_js_integrity
    # In a browser, with the app and S3 both unreachable, the CID copy is the one that runs.
    context = browser.new_context()
    for origin in (live.url, live.s3):
        context.route(f"{origin}/**", lambda route: route.abort())
    page = context.new_page()
    page.goto(blog.page(code))
    assert shown(page)["text"] in live.texts
    context.close()


def test_the_selfhost_example_works_from_a_page_deep_in_the_site(browser, live, blog, tmp_path):
    data = live.app.test_client().get("/embed/selfhost.zip").data
    zipfile.ZipFile(io.BytesIO(data)).extractall(tmp_path / "blog")
    example = (tmp_path / "blog" / "example.html").read_text()
    (tmp_path / "blog" / "2026" / "12").mkdir(parents=True)
    context = browser.new_context()
    context.route(lambda url: not url.startswith(blog.url), lambda route: route.abort())
    page = context.new_page()
    page.goto(blog.page(example.split("<title>Samizdat example</title>", 1)[1], name="2026/12/post.html"))
    assert shown(page)["text"] in live.texts
    context.close()


LONGEST = 280  # fragments/split.py's DEFAULT_MAX_CHARS: no fragment is longer


@pytest.fixture
def long_fragments(tmp_path, sqlite_url):
    """The app on loopback (no S3, no IPFS) whose only fragments are as long as fragments get."""
    port = free_port()
    settings = make_settings(tmp_path, sqlite_url, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    add_fragments(app, 3, collection="vietnam", text_chars=LONGEST,
                  text="Nhà báo bị bắt vì đã viết về những điều chính quyền muốn giấu,")
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        # A title long enough to take the two lines the widget allows it.
        session.query(Fragment).update({Fragment.title: "Bài báo về những điều bị cấm nói ra " * 3})
        session.commit()
        publish_embed(session, settings)
        fragments = {f.id: f.text for f in session.query(Fragment)}
        texts = set(fragments.values())
    assert {len(t) for t in texts} == {LONGEST}
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield type("Long", (), {"app": app, "url": settings.public_url, "texts": texts, "ids": fragments})
    server.shutdown()
    rt.dispose()


# Whether a rendered widget shows its whole text: nothing clipped, cut with an ellipsis or
# scrolled away, neither in the text itself nor in the box around it.
WHOLE_TEXT = """(root) => { const q = root.querySelector('blockquote'), t = q.querySelector('.text, p');
  const clipped = (e) => e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1;
  const style = getComputedStyle(t), box = t.getBoundingClientRect(), outer = q.getBoundingClientRect();
  return {text: t.textContent, clipped: clipped(t) || clipped(q), ellipsis: style.textOverflow === 'ellipsis',
          nowrap: style.whiteSpace === 'nowrap', inside: box.bottom <= outer.bottom + 1 && box.top >= outer.top - 1,
          page: document.documentElement.scrollHeight <= innerHeight + 1}; }"""


@pytest.mark.parametrize("size", list(SIZES))
def test_every_size_shows_the_whole_of_the_longest_fragment(browser, long_fragments, blog, size):
    client = long_fragments.app.test_client()
    html = client.get(f"/embed?collection=vietnam&size={size}").get_data(as_text=True)
    tree = lxml.html.fromstring(html)
    script_code = tree.get_element_by_id("code-script").text_content()
    frame_code = tree.get_element_by_id("code-iframe").text_content()
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    # The script widget, inline in a blog post.
    page.goto(blog.page(script_code, name=f"script-{size}.html"))
    page.wait_for_selector(".samizdat-embed", timeout=15000)
    got = page.evaluate(f"() => ({WHOLE_TEXT})(document.querySelector('.samizdat-embed').shadowRoot)")
    assert got["text"] in long_fragments.texts
    assert not got["clipped"] and not got["ellipsis"] and not got["nowrap"] and got["inside"], (size, got)
    # The frame, at the width and height the builder's code gives it: no scrolling, no cut.
    page.goto(blog.page(frame_code, name=f"frame-{size}.html"))
    frame = page.frames[1]
    frame.wait_for_selector(".samizdat-embed", timeout=15000)
    got = frame.evaluate(f"() => ({WHOLE_TEXT})(document.querySelector('.samizdat-embed').shadowRoot)")
    assert got["text"] in long_fragments.texts
    assert not got["clipped"] and not got["ellipsis"] and got["inside"] and got["page"], (size, got)
    # A fragment page's oEmbed card (no script) at this size.
    fragment_id = next(iter(long_fragments.ids))
    card = client.get("/oembed", query_string={
        "url": f"{long_fragments.url}/fragments/{fragment_id}?size={size}"}).get_json()
    page.goto(blog.page(card["html"], name=f"card-{size}.html"))
    frame = page.frames[1]
    frame.wait_for_selector("blockquote", timeout=15000)
    got = frame.evaluate(f"() => ({WHOLE_TEXT})(document)")
    assert got["text"] in long_fragments.texts
    assert not got["clipped"] and not got["ellipsis"] and got["inside"] and got["page"], (size, got)
    page.close()


ALL_TEXTS = """() => Array.from(document.querySelectorAll('.samizdat-embed'),
  h => h.shadowRoot.querySelector('.text').textContent)"""


def pack_requests(fetched):
    return [u for u in fetched if "/packs/" in u]


def test_an_expired_index_whose_fragment_was_since_rejected_is_refused_and_the_next_origin_used(
        browser, live, blog):
    rt = live.app.extensions["samizdat"]
    url = blog.page(script_snippet(live, f"{live.url}/embed/{live.script}"))
    # An ordinary view reads one index and one shard: the expiry costs no request.
    context = browser.new_context()
    fetched = []
    context.on("requestfinished", lambda r: fetched.append(r.url))
    page = context.new_page()
    page.goto(url)
    shown(page)
    assert [u.rsplit("/", 2)[-2] for u in pack_requests(fetched)] == ["all", "shards"], fetched
    assert all(u.startswith(live.url) for u in pack_requests(fetched))
    context.close()
    # A validly signed index that lives one second, holding every fragment...
    with rt.Session() as session:
        publish_embed(session, live.settings.replace(embed_index_ttl_hours=1 / 3600))
    stale = (live.settings.public_path / "packs/all/index.json").read_bytes()
    # ...then all fragments but one rejected, and the packs republished for the ordinary week.
    with rt.Session() as session:
        ids = sorted(session.scalars(select(Fragment.id).where(Fragment.status == APPROVED)))
        review(session, ids[1:], REJECTED, Reviewer("arch"))
        session.commit()
        kept = session.get(Fragment, ids[0]).text
        publish_embed(session, live.settings)
    time.sleep(1.5)  # the stale index has expired
    for _ in range(3):
        context = browser.new_context()
        fetched = []
        context.on("requestfinished", lambda r: fetched.append(r.url))
        # The app's origin (a stale mirror, say) still answers the expired index.
        context.route(f"{live.url}/embed/packs/all/index.json",
                      lambda route: route.fulfill(body=stale, content_type="application/json",
                                                  headers={"Access-Control-Allow-Origin": "*"}))
        page = context.new_page()
        page.goto(url)
        assert shown(page)["text"] == kept
        assert not any(u.startswith(f"{live.url}/embed/packs/shards/") for u in fetched), fetched
        assert any(u.startswith(live.s3) and "/shards/" in u for u in fetched), fetched
        context.close()


FORGED = {"text": "FORGED WORDS", "source_url": "https://example.org/", "title": "A real outlet",
          "link": "captures/1"}


def forged_cache(live, envelope: str, shard: str) -> str:
    """A host-page script writing forged widget cache entries: the old key names and the new."""
    archive = live.url + "/"
    entries = {
        "samizdat:serial:all/index.json": 2 ** 53,
        "samizdat:last:all/index.json": {"fragments": [FORGED], "archive": archive},
        f"samizdat:{live.report.key_id}|{archive}:all/index.json": {"env": envelope, "shard": shard},
    }
    code = ("for (const [k, v] of Object.entries(%s)) localStorage.setItem(k, JSON.stringify(v));"
            % json.dumps(entries).replace("</", "<\\/"))
    return f"<script>{code}</script>"


def forged_pack(live) -> tuple[str, str]:
    """A forged envelope (serial 2^53, our key's id, another key's signature) and its shard."""
    shard = canonical_json({"format": PACK_FORMAT, "fragments": [FORGED]}).decode()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    payload = {"format": PACK_FORMAT, "pack": "all", "collection": None, "language": None, "count": 1,
               "shards": [{"sha256": hashlib.sha256(shard.encode()).hexdigest(), "count": 1,
                           "bytes": len(shard.encode())}],
               "generated_at": now.isoformat(), "expires": (now + timedelta(days=300)).isoformat(),
               "serial": 2 ** 53}
    impostor = PackSigner(Ed25519PrivateKey.generate())
    envelope = json.loads(signed_envelope([impostor], payload))
    envelope["signatures"][0]["kid"] = live.report.key_id
    return json.dumps(envelope), shard


def test_forged_cache_entries_are_never_shown_and_never_lock_the_genuine_index_out(browser, live, blog):
    genuine = (live.settings.public_path / "packs/all/index.json").read_text()
    snippet = script_snippet(live, f"{live.url}/embed/{live.script}")
    cache_key = f"samizdat:{live.report.key_id}|{live.url}/:all/index.json"
    # A forged serial of 2^53 and a forged fragment: the genuine index is shown all the same,
    # and the forged entry is replaced by the genuine one.
    context = browser.new_context()
    page = context.new_page()
    page.goto(blog.page(forged_cache(live, *forged_pack(live)) + snippet))
    assert shown(page)["text"] in live.texts
    stored = json.loads(page.evaluate(f"() => localStorage.getItem({json.dumps(cache_key)})"))
    assert stored["env"] == genuine
    context.close()
    # The genuine signed index beside a forged shard, every origin blocked: nothing is shown
    # but the written-in fragment.
    context = browser.new_context()
    context.route(lambda u: "/packs/" in u or "/ipfs/" in u, lambda route: route.abort())
    page = context.new_page()
    page.goto(blog.page(forged_cache(live, genuine, forged_pack(live)[1]) + snippet))
    page.wait_for_timeout(3000)
    assert page.locator(".samizdat-embed").count() == 0
    assert "STATIC GENUINE FRAGMENT" in page.content()
    context.close()


@pytest.fixture
def second_archive(tmp_path):
    """Another archive (its own key, database and address, local only), published and served."""
    root = tmp_path / "second"
    root.mkdir()
    url = f"sqlite:///{root / 'samizdat.db'}"
    migrate.upgrade(url)
    port = free_port()
    settings = make_settings(root, url, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    add_fragments(app, 3, text="SECOND ARCHIVE")
    with app.extensions["samizdat"].Session() as session:
        report = publish_embed(session, settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield type("Second", (), {"url": settings.public_url, "report": report,
                              "script": report.embed_js_versioned})
    server.shutdown()
    app.extensions["samizdat"].dispose()


def test_two_archives_widgets_on_one_site_each_show_their_own_fragments(browser, live, blog, second_archive):
    rt = live.app.extensions["samizdat"]
    with rt.Session() as session:
        publish_embed(session, live.settings)  # the first archive's serial now tops the second's
    second = (f'<script async src="{second_archive.url}/embed/{second_archive.script}" '
              f'integrity="{second_archive.report.embed_js_integrity}" crossorigin="anonymous"></script>')
    context = browser.new_context()
    page = context.new_page()
    page.goto(blog.page(script_snippet(live, f"{live.url}/embed/{live.script}") + STATIC + second))
    page.wait_for_function("document.querySelectorAll('.samizdat-embed').length === 2", timeout=15000)
    first_text, second_text = page.evaluate(ALL_TEXTS)
    assert first_text in live.texts
    assert second_text.startswith("SECOND ARCHIVE")
    # Another page of the same site (one localStorage) with the second archive's widget alone.
    other = context.new_page()
    other.goto(blog.page(STATIC + second, name="other.html"))
    assert shown(other)["text"].startswith("SECOND ARCHIVE")
    context.close()


def test_a_fragment_that_opens_with_a_quotation_mark_gets_no_second_one(browser, tmp_path, sqlite_url, blog):
    """Many fragments of news pages are quotations ("People in Vietnam can be thrown in jail…"):
    the widget's own decorative quotation marks would double them (“"…"”)."""
    port = free_port()
    settings = make_settings(tmp_path, sqlite_url, public_url=f"http://127.0.0.1:{port}")
    app = create_app(settings)
    add_fragments(app, 3, collection="quoted", text='"They came at night," she said,')
    add_fragments(app, 3, collection="plain", start=10, text="The blogger was sentenced")
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        publish_embed(session, settings)
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    marks = """() => { const t = document.querySelector('.samizdat-embed').shadowRoot.querySelector('.text');
      return {text: t.textContent, before: getComputedStyle(t, '::before').content,
              after: getComputedStyle(t, '::after').content}; }"""
    page = browser.new_page()
    try:
        for collection, expected in (("quoted", ("none", "none")), ("plain", ('"“"', '"”"'))):
            code = lxml.html.fromstring(app.test_client().get(
                f"/embed?collection={collection}").get_data(as_text=True)
            ).get_element_by_id("code-script").text_content()
            page.goto(blog.page(code, name=f"{collection}.html"))
            page.wait_for_selector(".samizdat-embed", timeout=15000)
            got = page.evaluate(marks)
            assert got["text"].startswith('"' if collection == "quoted" else "The blogger"), got
            assert (got["before"], got["after"]) == expected, (collection, got)
    finally:
        page.close()
        server.shutdown()
        rt.dispose()
