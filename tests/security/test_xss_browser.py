"""XSS: hostile titles, fragment text, URLs, collection and tag names and file names are text on
every page that shows them, checked in Chromium (item: security tests).

One hostile page is captured twice (so there is a diff), its fragments approved into a
collection whose name is itself an attack, the packs and the static copy published; then one
browser tab visits every page that shows those values. Each payload sets ``window.__pwned`` and
opens a dialog if it ever runs: neither may happen, and the payload must read as visible text.
"""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote, urlencode

import lxml.etree
import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from accounts.users import create_user
from archive.index import reindex
from archive.static_copy import EXPORT_LINK, publish_static
from provenance.appender import append_captures
from embed.publish import publish_embed
from fragments.curation import Reviewer, change_tags, create_collection, review_pending
from fragments.models import APPROVED, Fragment
from mirror.jobs import enqueue
from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import TEST_PASSWORD, make_settings
from tests.services import free_port

# Runs if it is ever parsed as HTML: a script, an attribute break-out, a closing script tag.
PAYLOAD = (
    "<script>window.__pwned='script';alert(1)</script>"
    "\"><img src=x onerror=\"window.__pwned='img';alert(2)\"></script>"
)
SHOWN = "<script>window.__pwned='script'"  # what a reader must see, as text
# Names travel in URL paths, so no slash; they break out of attributes instead.
NAME = "\"><img src=x onerror=\"window.__pwned='name';alert(3)\">"
JS_LINK = "javascript:window.__pwned='link';alert(4)"


def _escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class _HostileHandler(http.server.BaseHTTPRequestHandler):
    """Any path: an article whose title and text are the payloads (a new version per request)."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.server.version += 1
        words = " ".join(["censored"] * 12)
        body = f"""<!doctype html><html><head><meta charset="utf-8">
<title>{_escaped(PAYLOAD)}</title></head><body><article><h1>{_escaped(PAYLOAD)}</h1>
<p>Version {self.server.version}: {words} {_escaped(PAYLOAD)} and the end of it.</p>
<p>A link to follow {_escaped(JS_LINK)} with <a href="{_escaped(JS_LINK)}">this anchor</a>,
{words} then {_escaped("</script><script>window.__pwned='close'</script>")} there.</p>
</article></body></html>""".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve(server) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Iterator[SimpleNamespace]:
    """The app on loopback with the hostile data captured, approved, published and exported."""
    tmp = tmp_path_factory.mktemp("xss")
    origin = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    origin.version = 0
    _serve(origin)
    url = sqlite_url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(sqlite_url)
    port = free_port()
    settings = make_settings(tmp, url, public_url=f"http://127.0.0.1:{port}", archive_publish=False)
    app = create_app(settings)
    rt = app.extensions["samizdat"]
    page_url = f"http://127.0.0.1:{origin.server_port}/<script>alert(5)</script>/page.html"
    with rt.Session() as session:
        source_id = add_source(session, page_url, 60, collection=NAME).source.id
        create_user(session, "ana", "admin", TEST_PASSWORD)
        session.commit()
    captures = [capture_source(rt, source_id).capture_id for _ in range(2)]
    with rt.Session() as session:
        create_collection(session, NAME)
        review_pending(session, APPROVED, Reviewer("arch"))
        fragments = session.scalars(select(Fragment).where(Fragment.status == APPROVED)).all()
        assert fragments and all(f.collection == NAME for f in fragments)
        for fragment in fragments:
            change_tags(session, fragment, add=[NAME])
        shown = next(f for f in fragments if "<script>" in f.text)
        fragment_id = shown.id
        enqueue(session, source_id, "manual", requested_by=NAME)
        report = publish_embed(session, settings)
        session.commit()
        assert session.scalar(select(Capture.title).where(Capture.id == captures[1])) == PAYLOAD
    assert not report.failures, report.failures
    reindex(rt)
    append_captures(rt)  # the static copy carries only what the public log holds
    static = publish_static(app)
    assert not static.failures, static.failures
    export = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0),
        partial(http.server.SimpleHTTPRequestHandler, directory=str(settings.public_path / EXPORT_LINK)),
    )
    _serve(export)
    # A supporter's blog on its own origin, with no policy of its own to hide behind.
    (tmp / "blog").mkdir()
    blog = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp / "blog"))
    )
    _serve(blog)
    server = make_server("127.0.0.1", port, app, threaded=True)
    _serve(server)
    yield SimpleNamespace(
        app=app, base=settings.public_url, source_id=source_id, captures=captures,
        fragment_id=fragment_id, export_dir=settings.public_path / EXPORT_LINK,
        export_base=f"http://127.0.0.1:{export.server_port}",
        blog_base=f"http://127.0.0.1:{blog.server_port}",
    )
    server.shutdown()
    export.shutdown()
    blog.shutdown()
    origin.shutdown()
    rt.dispose()


@pytest.fixture(scope="module")
def tab(chromium) -> Iterator[SimpleNamespace]:
    """One browser tab for the module, recording every dialog and uncaught error."""
    context = chromium.new_context()
    page = context.new_page()
    dialogs: list[str] = []

    def on_dialog(dialog) -> None:
        dialogs.append(f"{page.url}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield SimpleNamespace(page=page, dialogs=dialogs)
    context.close()


def inert(tab, url: str, shows: str | None = SHOWN) -> str:
    """Load ``url``; assert nothing ran in it or its same-site frames; return its visible text."""
    response = tab.page.goto(url, wait_until="load")
    assert response is not None and response.status == 200, (url, response and response.status)
    for frame in tab.page.frames:
        if frame.url.startswith("http"):  # sandboxed replay documents cannot run script at all
            assert frame.evaluate("typeof window.__pwned") == "undefined", (url, frame.url)
    assert tab.dialogs == [], tab.dialogs
    text = tab.page.inner_text("body")
    if shows is not None:
        assert shows in text, (url, text[:500])
    return text


def test_reader_pages_show_the_payloads_as_text(hostile, tab):
    base, sid = hostile.base, hostile.source_id
    first, second = hostile.captures
    for path in ("/", "/archive", f"/archive/{sid}", f"/captures/{second}/",
                 "/archive?" + urlencode({"q": "censored"})):
        inert(tab, base + path)
    text = inert(tab, base + f"/archive/{sid}/diff?from={first}&to={second}")
    assert "Version" in text
    replay = inert(tab, base + f"/captures/{second}/replay", shows=None)
    assert PAYLOAD[:20] in replay or "<script>alert(5)</script>" in replay
    # The hostile source URL (with <script> in its path) is shown as text too.
    assert "<script>alert(5)</script>" in inert(tab, base + f"/archive/{sid}", shows=None)


def test_archivist_pages_show_the_payloads_as_text(hostile, tab):
    page, base = tab.page, hostile.base
    page.goto(base + "/login")
    page.fill("#name", "ana")
    page.fill("#password", TEST_PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login" not in page.url
    inert(tab, base + "/manage/fragments?status=approved")
    inert(tab, base + "/manage/sources", shows="<script>alert(5)</script>")
    # The collection sits in each row's edit form, as the field's value.
    values = page.evaluate("[...document.querySelectorAll('input')].map(i => i.value)")
    assert NAME in values
    assert "<script>alert(5)</script>" in inert(tab, base + "/manage/jobs", shows=None)
    # An import whose file name and lines are attacks: the result page lists them as text.
    page.goto(base + "/manage/sources/import")
    page.set_input_files("input[type=file]", files=[{
        "name": f"{NAME}.txt", "mimeType": "text/plain",
        "buffer": f"{PAYLOAD}\n{JS_LINK}\nhttps://fine.example/\n".encode(),
    }])
    with page.expect_navigation():
        page.click("form[enctype] button[type=submit]")
    assert tab.dialogs == []
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert "javascript:" in page.inner_text("body")


def test_embed_views_show_the_payloads_as_text(hostile, tab):
    base, fid = hostile.base, hostile.fragment_id
    inert(tab, base + f"/fragments/{fid}")
    inert(tab, base + f"/fragments/{fid}/card", shows=None)
    assert "<script>" in tab.page.inner_text("body")
    collection = base + "/collections/" + quote(NAME, safe="")
    inert(tab, collection, shows=NAME)
    inert(tab, base + "/embed/preview?" + urlencode({"collection": NAME}), shows=None)
    inert(tab, base + "/embed?" + urlencode({"collection": NAME}), shows=None)
    snippets = tab.page.evaluate("[...document.querySelectorAll('textarea')].map(e => e.value)")
    assert len(snippets) == 2 and "<blockquote" in snippets[0] and "<iframe" in snippets[1]
    # A supporter pastes each snippet into a blog post: it must stay inert there too.
    for snippet in snippets:
        tab.page.goto(hostile.blog_base + "/")
        tab.page.set_content(f"<!doctype html><html><body><h1>blog</h1>{snippet}</body></html>")
        tab.page.wait_for_load_state("load")
        assert tab.page.evaluate("typeof window.__pwned") == "undefined", snippet
        assert not tab.page.locator("body img[src=x]").count(), snippet
    assert tab.dialogs == []


def test_the_embed_frame_renders_fragment_text_as_text(hostile, tab):
    url = hostile.base + "/embed/frame?" + urlencode({"collection": NAME})
    inert(tab, url, shows=None)
    text = tab.page.locator(".text").first
    text.wait_for(timeout=15000)
    assert "<script>" in text.text_content() or "javascript:" in text.text_content()
    assert tab.page.evaluate("typeof window.__pwned") == "undefined"
    assert tab.dialogs == []


def test_oembed_html_rendered_into_a_page_stays_inert(hostile, tab):
    page_url = f"{hostile.base}/fragments/{hostile.fragment_id}"
    client = hostile.app.test_client()
    for fmt in ("json", "xml"):
        response = client.get("/oembed?" + urlencode({"url": page_url, "format": fmt}))
        assert response.status_code == 200
    body = client.get("/oembed?" + urlencode({"url": page_url})).get_json()
    assert body["title"] == PAYLOAD and "<script" not in body["html"]
    # A consumer pastes the html into its page, as WordPress does: one iframe, nothing else.
    tab.page.goto(hostile.blog_base + "/")
    tab.page.set_content(f"<!doctype html><html><body><h1>blog</h1>{body['html']}</body></html>")
    tab.page.wait_for_load_state("load")
    assert tab.page.locator("body > *").count() == 2
    assert tab.page.evaluate("typeof window.__pwned") == "undefined"
    for frame in tab.page.frames:
        assert frame.evaluate("typeof window.__pwned") == "undefined"
    assert tab.dialogs == []


def test_the_feed_is_well_formed_and_carries_the_payload_as_text(hostile):
    client = hostile.app.test_client()
    response = client.get("/collections/" + quote(NAME, safe="") + "/feed.atom")
    assert response.status_code == 200
    root = lxml.etree.fromstring(response.data)
    texts = "".join(root.itertext())
    assert PAYLOAD in texts and NAME in texts
    ns = {"a": "http://www.w3.org/2005/Atom"}
    assert not root.xpath("//a:script | //*[local-name()='img']", namespaces=ns)


def test_the_static_copy_shows_the_payloads_as_text(hostile, tab):
    pages = sorted(hostile.export_dir.rglob("*.html"))
    hostile_pages = [p for p in pages if "__pwned" in p.read_text(errors="replace")]
    assert hostile_pages, [str(p) for p in pages][:20]
    texts = []
    for path in hostile_pages:
        # Escaped in the file itself, not merely kept from running by the copy's policy.
        assert "<script>window.__pwned" not in path.read_text(), path
        relative = path.relative_to(hostile.export_dir).as_posix()
        texts.append(inert(tab, f"{hostile.export_base}/{quote(relative)}", shows=None))
    assert any(SHOWN in text for text in texts)


def test_control_the_same_payloads_run_when_parsed_as_html(hostile, tab):
    # Proves the detector works: were any page to insert the payloads raw, the checks above fail.
    tab.page.goto(hostile.blog_base + "/")
    tab.page.set_content(f"<!doctype html><html><body>{PAYLOAD}{NAME}</body></html>")
    tab.page.wait_for_load_state("load")
    assert tab.page.evaluate("typeof window.__pwned") == "string"
    assert len(tab.dialogs) >= 2
    tab.dialogs.clear()
