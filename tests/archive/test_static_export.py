"""The reader archive's static copy: exported through the app, published to the public dir, moto's
S3 server and the js-ipfs daemon, opened from the js-ipfs gateway in Chromium."""

from __future__ import annotations

import functools
import html
import json
import os
import posixpath
import re
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
import pytest
from flask import Flask, url_for
from playwright.sync_api import Error as PlaywrightError

from archive.static_copy import (
    EXPORT_LINK,
    SEARCH_INDEX,
    STATE_FILE,
    LinkMap,
    StaticExportError,
    publish_static,
    rewrite_html,
)
from archive import reading
from archive.tasks import StaticExportDebouncer
from fragments.models import Fragment
from mirror.models import Capture, CapturePart, Source
from mirror.pipeline import capture_source
from mirror.storage.sites import S3Site, SiteFile, SiteReport
from mirror.sources import add_source
from provenance.appender import append_captures
from samizdat.app import create_app
from tests.conftest import make_settings
from tests.services import free_port
from tests.sites import seed_names

def capture_seeds(app: Flask, site, names: list[str]) -> list[int]:
    """Capture (and process) one source per seed article and append them to the public log (the
    static copy carries only what the log holds); return the capture ids."""
    rt = app.extensions["samizdat"]
    ids = []
    for name in names:
        with rt.Session() as session:
            source_id = add_source(session, site.url(f"/articles/{name}.html"), 60).source.id
            session.commit()
        ids.append(capture_source(rt, source_id).capture_id)
    append_captures(rt)
    return ids


@pytest.fixture
def published(tmp_path, sqlite_url, s3_server, ipfs_node, bucket, site):
    """An app with S3 and IPFS on and two captured articles."""
    settings = make_settings(
        tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket,
        ipfs_api=ipfs_node.api_multiaddr, ipfs_gateways=ipfs_node.gateway_url,
        public_url=f"http://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    capture_seeds(app, site, seed_names()[:2])
    yield app
    app.extensions["samizdat"].dispose()


@pytest.fixture
def local_app(tmp_path, sqlite_url, site):
    """An app on SQLite and the local store only, one captured article."""
    app = create_app(make_settings(tmp_path, sqlite_url))
    capture_seeds(app, site, seed_names()[:1])
    yield app
    app.extensions["samizdat"].dispose()


_LINK = re.compile(r"""\s(?:href|src|action)\s*=\s*"([^"]*)\"""")


def file_path(app: Flask, capture_id: int, name: str) -> str:
    """Where the app serves a capture's file, as a path inside the export."""
    with app.test_request_context("/"):
        return url_for("replay.capture_file", capture_id=capture_id, name=name).lstrip("/")


def export_dir(app: Flask) -> Path:
    return app.extensions["samizdat"].settings.public_path / EXPORT_LINK


def broken_links(root: Path) -> list[str]:
    """Every internal link of every exported HTML page that names no file of the export."""
    bad = []
    for page in root.rglob("*.html"):
        if "/files/" in page.as_posix() or page.name in ("offline.html", "page.html"):
            continue  # captures' own files: archived bytes, not our pages
        rel = page.relative_to(root).as_posix()
        for value in _LINK.findall(page.read_text()):
            value = html.unescape(value)
            if re.match(r"^[a-z][a-z0-9+.-]*:", value) or value.startswith("#"):
                continue
            if value.startswith("/"):
                bad.append(f"{rel}: root-relative {value}")
                continue
            target = posixpath.normpath(posixpath.join(posixpath.dirname(rel), value.split("#")[0]))
            if not (root / target).is_file():
                bad.append(f"{rel}: {value}")
    return bad


def words(text: str) -> str:
    """``text`` with its whitespace collapsed, to compare what a browser shows."""
    return " ".join(text.split())


def first_words(app: Flask, capture_id: int, count: int = 6) -> str:
    """The first words of a capture's text (its first fragment), which its reader view shows."""
    with app.extensions["samizdat"].Session() as session:
        text = session.query(Fragment).filter_by(capture_id=capture_id, position=0).one().text
    return " ".join(text.split()[:count])


def test_export_opens_from_the_ipfs_gateway_with_every_link_working(published, chromium):
    client = published.test_client()
    assert "Blocked?" not in client.get("/").get_data(as_text=True)
    report = publish_static(published)
    assert not report.failures, report.failures
    assert report.root_cid and report.ipns_name
    root = export_dir(published)
    assert broken_links(root) == []
    # Every reader page the live site has for these captures is in the copy.
    for path in ("index.html", "archive/index.html", "archive/1/index.html", "archive/2/index.html",
                 "captures/1/index.html", "captures/2/index.html", "captures/1/replay/index.html",
                 "captures/2/replay/index.html", file_path(published, 1, "offline.html"),
                 "archive/static/reader.css"):
        assert (root / path).is_file(), path
    front = (root / "index.html").read_text()
    live = published.extensions["samizdat"].settings.public_url
    # What needs a server goes to the live site, said outright: diffs, WACZ downloads; the
    # header's search is the copy's own (its front page).
    assert 'action="index.html"' in front and 'href="archive/static/reader.css"' in front
    assert f'action="{live}' not in front
    timeline = (root / "archive/1/index.html").read_text()
    assert f'href="{live}/archive/1/export.wacz"' in timeline
    assert 'href="../../captures/1/index.html"' in timeline
    assert 'http-equiv="Content-Security-Policy"' in front
    gateway = published.extensions["samizdat"].settings.gateway_list[0]
    assert report.urls["gateway"] == f"{gateway}/ipfs/{report.root_cid}/index.html"
    assert report.urls["ipns"] == f"ipns://{report.ipns_name}/"

    with published.extensions["samizdat"].Session() as session:
        title = session.get(Capture, 1).title
    text = first_words(published, 1)
    copy_root = f"{gateway}/ipfs/{report.root_cid}/"
    page = chromium.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        # Front page → the source's timeline → a reader view → its replay, all inside the copy.
        page.goto(report.urls["gateway"])
        assert page.locator("h1").inner_text() == "Pages governments blocked, kept readable"
        page.locator("main").get_by_role("link", name=title, exact=True).first.click()
        page.wait_for_url(f"{copy_root}archive/1/index.html")
        assert title in page.locator("h1").inner_text()
        page.get_by_role("link", name="Read the latest copy").click()
        page.wait_for_url(f"{copy_root}captures/1/index.html")
        assert text in words(page.locator("main").inner_text())
        page.get_by_role("link", name="See it as it looked").first.click()
        page.wait_for_url(f"{copy_root}captures/1/replay/index.html")
        assert page.locator("iframe").get_attribute("sandbox") == ""
        frame = page.frame_locator("iframe")
        assert text in words(frame.locator("body").inner_text(timeout=10000))
        # The optional search reads search-index.json beside the front page.
        page.goto(report.urls["gateway"])
        entries = json.loads((root / SEARCH_INDEX).read_bytes())["entries"]
        assert len(entries) == 2 and all(e["x"] and len(e["x"]) <= 161 for e in entries)
        assert report.search_index_bytes == (root / SEARCH_INDEX).stat().st_size < 2048
        page.fill("#site-search", max(title.split(), key=len))
        page.locator("#copy-search li a").first.click()
        page.wait_for_url(f"{copy_root}archive/*/index.html")
    finally:
        page.close()
    # Nothing was fetched from anywhere but the copy on the gateway (no live site, no source).
    assert requests and [u for u in requests if not u.startswith(copy_root)] == []

    # The same files are public on S3 under website-style keys.
    with urllib.request.urlopen(report.urls["s3"]) as answer:
        assert answer.headers["Content-Type"].startswith("text/html")
        assert answer.read() == (root / "index.html").read_bytes()
    # The page as served (its scripts kept) is a download, never an HTML document of the copy.
    with published.extensions["samizdat"].Session() as session:
        name = session.query(CapturePart).filter_by(capture_id=1, role="page").one().name
    raw = file_path(published, 1, name)
    original = (root / f"{raw}.txt").read_bytes()
    assert b"<script>" in original  # the bytes as archived (sha256 unchanged) ...
    assert not (root / raw).exists() or (root / raw).read_bytes() != original  # ... never as .html
    assert f'href="../files/{name}.txt"' in (root / "captures/1/replay/index.html").read_text()
    s3_base = published.extensions["samizdat"].settings.s3_public_base
    with urllib.request.urlopen(f"{s3_base}/site/{raw}.txt") as answer:
        assert answer.headers["Content-Type"] == "application/octet-stream"

    # The dynamic pages now link to this copy ("Blocked? Read the copy on IPFS / S3").
    text = client.get("/").get_data(as_text=True)
    assert f'href="{report.urls["gateway"]}"' in text and f'href="{report.urls["s3"]}"' in text


def inodes(root: Path) -> dict[str, int]:
    """Each file of the export (path under its root) and its inode: a rewritten file gets a new one."""
    root = root.resolve()
    return {p.relative_to(root).as_posix(): os.stat(p).st_ino for p in root.rglob("*") if p.is_file()}


def test_exports_are_incremental_unchanged_uploads_nothing_and_new_captures_only_their_pages(published, site):
    # The command prints the counts, the root CID and where the copy can be read.
    result = published.test_cli_runner().invoke(args=["archive", "publish"])
    state = json.loads((published.extensions["samizdat"].settings.public_path / STATE_FILE).read_bytes())
    assert result.exit_code == 0, result.output
    assert f"root CID {state['root_cid']}" in result.output
    assert f"gateway: {state['urls']['gateway']}" in result.output and "s3: http" in result.output
    assert re.search(r"^s3: \d+ file\(s\) uploaded", result.output, re.M)
    first = publish_static(published)
    # The readers who most need the copy read Vietnamese: it holds every page in both languages,
    # and a Vietnamese page's links stay in the Vietnamese copy.
    vi_front = (export_dir(published) / "vi" / "index.html").read_text()
    assert '<html lang="vi"' in vi_front and 'href="archive/index.html"' in vi_front
    again = publish_static(published)
    assert not again.failures
    assert again.written == 0 and again.deleted == 0 and again.unchanged == first.files
    assert [(s.site, s.uploaded, s.bytes, s.deleted) for s in again.sites] == [("s3", 0, 0, 0), ("ipfs", 0, 0, 0)]
    assert again.root_cid == first.root_cid

    before = inodes(export_dir(published))
    (new_capture,) = capture_seeds(published, site, seed_names()[2:3])
    with published.extensions["samizdat"].Session() as session:
        new_source = session.get(Capture, new_capture).source_id
    second = publish_static(published)
    assert not second.failures
    after = inodes(export_dir(published))
    rewritten = {p for p, ino in after.items() if before.get(p) != ino}
    # The new capture's pages and files, its source's timeline, and the pages listing every
    # source; nothing of the other captures.
    # Each page is there in English and, under vi/, in Vietnamese (the copy holds both).
    new_files = {p for p in rewritten if p.removeprefix("vi/").startswith(f"captures/{new_capture}/")}
    assert new_files >= {f"{lang}captures/{new_capture}/{page}index.html"
                         for lang in ("", "vi/") for page in ("", "replay/")}
    assert file_path(published, new_capture, "offline.html") in new_files
    # The log's copy: its new checkpoint and the partial tiles of the new size, nothing else.
    assert {p for p in rewritten if p.startswith("log/")} == {
        "log/checkpoint", "log/tile/0/000.p/3", "log/tile/entries/000.p/3"}
    assert {p for p in rewritten - new_files if not p.startswith("log/")} == {
        f"{lang}{page}" for lang in ("", "vi/") for page in (
            f"archive/{new_source}/index.html", "archive/index.html", "index.html")} | {SEARCH_INDEX}
    assert second.written == len(rewritten) and second.unchanged == len(after) - len(rewritten)
    s3 = next(s for s in second.sites if s.site == "s3")
    assert s3.uploaded == second.written and second.root_cid != first.root_cid

    # A capture that leaves the archive leaves the copy: deleted locally, on S3 and in IPFS.
    rt = published.extensions["samizdat"]
    with rt.Session() as session:
        session.get(Capture, new_capture).status = "failed"
        session.commit()
    third = publish_static(published)
    assert third.deleted >= len(new_files) and not (export_dir(published) / f"captures/{new_capture}").exists()
    assert all(s.deleted == third.deleted for s in third.sites)
    assert broken_links(export_dir(published)) == []


def header(page: str) -> str:
    """The reader header of an exported page."""
    return re.search(r'<header class="reader">.*?</header>', page, re.S).group(0)


def test_the_vietnamese_copy_speaks_vietnamese_and_its_header_stays_in_it(local_app):
    # `flask archive publish`: every page rendered inside the one app context of the command.
    assert local_app.test_cli_runner().invoke(args=["archive", "publish"]).exit_code == 0
    root = export_dir(local_app)
    front = (root / "vi/index.html").read_text()
    assert '<html lang="vi">' in front and "Những trang web bị chính quyền chặn, vẫn đọc được" in front
    assert "Pages governments blocked, kept readable" not in front
    listing = (root / "vi/archive/index.html").read_text()
    assert '<html lang="vi">' in listing and "Bản lưu mới nhất trước" in listing
    timeline = (root / "vi/archive/1/index.html").read_text()
    assert '<html lang="vi">' in timeline and "Các bản lưu, mới nhất trước" in timeline
    english = (root / "archive/1/index.html").read_text()
    assert '<html lang="en">' in english and "Captures, newest first" in english
    # The header's "Samizdat" and "Archive" stay in the Vietnamese half of the copy.
    assert '<a class="brand" href="index.html">Samizdat</a>' in header(front)
    assert '<a href="archive/index.html">Kho lưu trữ</a>' in header(front)
    assert '<a class="brand" href="../../index.html">Samizdat</a>' in header(timeline)
    assert '<a href="../index.html">Kho lưu trữ</a>' in header(timeline)
    assert '<a class="brand" href="../../index.html">Samizdat</a>' in header(english)


class _QuietFiles(SimpleHTTPRequestHandler):
    """The standard library's file server without a log line per request."""

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def folder_server(local_app):
    """The public directory served over HTTP on loopback, as any static host would serve the copy."""
    public = local_app.extensions["samizdat"].settings.public_path
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(public)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{EXPORT_LINK}/"
    server.shutdown()
    server.server_close()


def test_the_copys_header_search_is_its_own_and_says_why_it_cannot_run_from_a_folder(
        local_app, folder_server, chromium):
    publish_static(local_app)
    root = export_dir(local_app)
    live = local_app.extensions["samizdat"].settings.public_url
    # No header search of the copy sends the reader to the live site (blocked: an error page).
    for page_file in root.rglob("index.html"):
        match = re.search(r'<form class="search" role="search" method="get" action="([^"]*)"',
                          page_file.read_text())
        if match:
            assert not match.group(1).startswith(live), page_file
    assert 'action="../../index.html"' in header((root / "vi/archive/1/index.html").read_text())
    title = next(iter(json.loads((root / SEARCH_INDEX).read_bytes())["entries"]))["t"]
    word = max(title.split(), key=len)
    page = chromium.new_page()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    try:
        # From a web address: the header's search on any page is answered by the copy's front page.
        for language, heading in (("", "Search this copy"), ("vi/", "Tìm trong bản sao này")):
            page.goto(f"{folder_server}{language}archive/1/index.html")
            page.fill("#site-search", word)
            page.press("#site-search", "Enter")
            page.wait_for_url(f"{folder_server}{language}index.html?q=*")
            results = page.locator("#copy-search")
            assert results.locator("h2").inner_text() == heading
            results.locator("li a").first.click()
            page.wait_for_url(f"{folder_server}{language}archive/1/index.html")
        # From a folder: the browser will not let the script read its index; it says so.
        page.goto((root / "archive/1/index.html").resolve().as_uri())
        page.fill("#site-search", word)
        page.press("#site-search", "Enter")
        page.wait_for_url("file://**/index.html?q=*")
        notice = page.locator("#copy-search .copy-search-unavailable")
        notice.wait_for(state="visible")
        assert "cannot run here" in notice.inner_text()
        assert page.locator("#site-search").input_value() == word
    finally:
        page.close()
    assert [u for u in requests if u.startswith(live)] == []


# An image that runs script when opened as a document: what a hostile source could serve.
SCRIPTED_SVG = (b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="8" height="8"/>'
                b'<script>localStorage.setItem("pwned", "1"); document.title = "PWNED";</script></svg>')


class _ScriptedImageSite(BaseHTTPRequestHandler):
    """A page whose image is an SVG carrying a script."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        if self.path == "/logo.svg":
            body, kind = SCRIPTED_SVG, "image/svg+xml"
        else:
            body = (b"<!doctype html><html><head><title>Scripted image</title></head><body><main>"
                    b"<h1>Scripted image</h1><img src='/logo.svg' alt='logo'><p>" + b"Words. " * 40
                    + b"</p></main></body></html>")
            kind = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_no_file_of_the_copy_runs_script_on_s3(tmp_path, sqlite_url, s3_server, bucket, chromium):
    source_site = ThreadingHTTPServer(("127.0.0.1", 0), _ScriptedImageSite)
    threading.Thread(target=source_site.serve_forever, daemon=True).start()
    app = create_app(make_settings(tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                                   s3_bucket=bucket))
    try:
        rt = app.extensions["samizdat"]
        with rt.Session() as session:
            source_id = add_source(session, f"http://127.0.0.1:{source_site.server_address[1]}/", 60).source.id
            session.commit()
        capture_id = capture_source(rt, source_id).capture_id
        append_captures(rt)
        with rt.Session() as session:
            svg = session.query(CapturePart).filter_by(capture_id=capture_id, role="asset").one()
            assert svg.content_type == "image/svg+xml" and svg.name.endswith(".svg")
            name = svg.name
        report = publish_static(app)
        assert not report.failures, report.failures
        exported = [p for p in export_dir(app).rglob("*") if p.name.startswith(name.rsplit("/", 1)[-1])]
        assert [p.name for p in exported] == [name.rsplit("/", 1)[-1] + ".txt"]
        key = f"site/{file_path(app, capture_id, name)}.txt"
        head = boto3.client("s3", endpoint_url=s3_server.endpoint_url).head_object(Bucket=bucket, Key=key)
        assert head["ContentType"] == "application/octet-stream"
        assert head["ContentDisposition"] == "attachment"
        base = rt.settings.s3_public_base
        page = chromium.new_page()
        try:
            for url in (f"{base}/{key}", f"{base}/site/{file_path(app, capture_id, name)}"):
                try:
                    page.goto(url)
                except PlaywrightError:
                    pass  # a download (or no such key): nothing was shown, nothing ran
                page.wait_for_timeout(300)
                assert page.title() != "PWNED", url
            page.goto(f"{base}/site/index.html")
            assert page.evaluate('localStorage.getItem("pwned")') is None
        finally:
            page.close()
    finally:
        app.extensions["samizdat"].dispose()
        source_site.shutdown()
        source_site.server_close()


def test_the_listing_and_the_timelines_are_exported_page_by_page(local_app):
    rt = local_app.extensions["samizdat"]
    with rt.Session() as session:
        first = session.get(Capture, 1)
        parts = [(p.role, p.name, p.sha256, p.size, p.content_type) for p in first.parts]
        # 25 more pages (the listing shows 25 a page), each with a stored copy of the same bytes.
        for n in range(25):
            source = Source(url=f"https://blocked.example/{n}", interval_minutes=60)
            capture = Capture(source=source, status="ok", url=source.url, title=f"Blocked page {n}",
                              content_type=first.content_type, charset=first.charset,
                              processed_at=first.processed_at)
            capture.parts = [CapturePart(role=r, name=nm, sha256=sh, size=sz, content_type=ct)
                             for r, nm, sh, sz, ct in parts]
            session.add(capture)
        # And 50 failed attempts of the first page: its timeline (50 a page) gets a second page.
        for _ in range(50):
            session.add(Capture(source_id=first.source_id, status="failed", url=first.url,
                                error_reason="timeout"))
        session.commit()
    publish_static(local_app)
    root = export_dir(local_app)
    assert broken_links(root) == []
    listing = (root / "archive/page/2/index.html").read_text()
    assert 'rel="prev" href="../../index.html"' in listing  # page 1 is the listing itself
    assert 'rel="next" href="page/2/index.html"' in (root / "archive/index.html").read_text()
    timeline = (root / "archive/1/page/2/index.html").read_text()
    assert 'rel="prev" href="../../index.html"' in timeline
    assert 'rel="next" href="page/2/index.html"' in (root / "archive/1/index.html").read_text()
    assert not (root / "archive/page/3").exists() and not (root / "archive/1/page/3").exists()


def test_rewriting_sandboxes_every_frame_and_adds_a_policy(local_app):
    settings = local_app.extensions["samizdat"].settings
    links = LinkMap(settings)
    links.files["/captures/1/files/offline.html"] = "captures/1/files/offline.html"
    page = ('<html><head><title>x</title></head><body><iframe src="/captures/1/files/offline.html">'
            '</iframe><iframe sandbox="" src="/login"></iframe></body></html>')
    out = rewrite_html(page, links, "/captures/1/replay", "captures/1/replay/index.html", "default-src 'none'")
    assert '<iframe sandbox="" src="../files/offline.html">' in out
    assert f'<iframe sandbox="" src="{settings.public_url}/login">' in out
    assert out.startswith("<html><head><meta http-equiv=\"Content-Security-Policy\"")
    links.files["/archive"] = "archive/index.html"
    links.files["/archive?page=2"] = "archive/page/2/index.html"
    links.files["/archive/3"] = "archive/3/index.html"
    listing = rewrite_html('<a href="?page=2">2</a><a href="?page=1">1</a><a href="/archive/3?page=1&amp;per_page=50">t</a>'
                           "<a href='?q=h%C3%A0&amp;page=2'>q</a><a href='/archive?country=VN'>vn</a><a href='/archive/3/diff?from=1&amp;to=2'>d</a>"
                           "<form action='/archive'></form>",
                           links, "/archive", "archive/index.html", "")
    assert '<a href="page/2/index.html">2</a><a href="index.html">1</a><a href="3/index.html">t</a>' in listing
    assert f'<a href="{settings.public_url}/archive?q=h%C3%A0&amp;page=2">q</a>' in listing
    assert f'<a href="{settings.public_url}/archive/3/diff?from=1&amp;to=2">d</a>' in listing
    assert f'<a href="{settings.public_url}/archive?country=VN">vn</a>' in listing
    assert f'<form action="{settings.public_url}/archive">' in listing
    # A link to a page of ours the copy neither holds nor leaves to the live site stops the export.
    for missing in ("?page=3", "/captures/9/", "/archive/3?page=2&amp;per_page=50"):
        with pytest.raises(StaticExportError, match="which the static copy does not hold"):
            rewrite_html(f'<a href="{missing}">x</a>', links, "/archive", "archive/index.html", "")


def test_a_page_answering_an_error_stops_the_export_in_one_line_and_changes_nothing(local_app, site):
    cli = local_app.test_cli_runner()
    assert cli.invoke(args=["archive", "publish"]).exit_code == 0
    rt = local_app.extensions["samizdat"]
    state = (rt.settings.public_path / STATE_FILE).read_bytes()
    manifest = (rt.settings.data_dir / "static-site/manifest.json").read_bytes()
    exported = export_dir(local_app).resolve()
    # A listed page that does not exist is no better than a broken one.
    with pytest.raises(StaticExportError, match="^/archive/999 answered 404"):
        publish_static(local_app, extra_paths=["/archive/999"])
    assert export_dir(local_app).resolve() == exported
    # A new capture whose page the spool lost: its reader view answers 503.
    (capture_id,) = capture_seeds(local_app, site, seed_names()[1:2])
    with rt.Session() as session:
        sha = session.query(CapturePart).filter_by(capture_id=capture_id, role="page").one().sha256
    next(rt.settings.spool_dir.rglob(sha)).unlink()
    # `flask archive publish` runs in a fresh process: no text extracted earlier in this one.
    with reading._cache_lock:
        reading._cache.clear()
    failed = cli.invoke(args=["archive", "publish"])
    assert failed.exit_code == 1
    assert failed.output.strip().splitlines() == [
        f"Error: /captures/{capture_id}/ answered 503: the static copy was not changed"]
    assert export_dir(local_app).resolve() == exported and exported.is_dir()
    assert (rt.settings.public_path / STATE_FILE).read_bytes() == state
    assert (rt.settings.data_dir / "static-site/manifest.json").read_bytes() == manifest


def test_a_missing_blob_fails_in_one_line_and_keeps_the_previous_export(local_app):
    cli = local_app.test_cli_runner()
    ok = cli.invoke(args=["archive", "publish"])
    assert ok.exit_code == 0, ok.output
    assert "written" in ok.output
    rt = local_app.extensions["samizdat"]
    state = (rt.settings.public_path / STATE_FILE).read_bytes()
    exported = export_dir(local_app).resolve()
    with rt.Session() as session:
        sha = session.query(CapturePart).filter_by(role="warc").first().sha256
    blob = next(rt.settings.spool_dir.rglob(sha))
    blob.unlink()
    # --full writes every file again, so the lost blob is needed.
    failed = cli.invoke(args=["archive", "publish", "--full"])
    assert failed.exit_code != 0
    assert len(failed.output.strip().splitlines()) == 1 and "not in the local spool" in failed.output
    assert export_dir(local_app).resolve() == exported and exported.is_dir()
    assert (rt.settings.public_path / STATE_FILE).read_bytes() == state


def test_an_unreachable_s3_is_reported_and_the_local_copy_still_published(tmp_path, sqlite_url, site):
    settings = make_settings(tmp_path, sqlite_url, s3_endpoint_url=f"http://127.0.0.1:{free_port()}",
                             s3_bucket="nowhere")
    app = create_app(settings)
    try:
        capture_seeds(app, site, seed_names()[:1])
        result = app.test_cli_runner().invoke(args=["archive", "publish"])
        assert result.exit_code != 0
        assert result.output.strip().splitlines()[-1].startswith("Error: not published to s3:")
        assert (export_dir(app) / "index.html").is_file()
    finally:
        app.extensions["samizdat"].dispose()


def test_the_scheduler_exports_after_new_captures_only(local_app, site):
    debouncer = StaticExportDebouncer(local_app, quiet=0.0)
    rt = local_app.extensions["samizdat"]
    assert debouncer(rt) is True
    assert debouncer(rt) is False  # nothing processed since
    capture_seeds(local_app, site, seed_names()[1:2])
    assert debouncer(rt) is True
    state = json.loads((rt.settings.public_path / STATE_FILE).read_bytes())
    assert state["written"] > 0 and state["unchanged"] > 0
    # A capture processed before an export but logged after it: the log's growth alone exports.
    (source_id,) = [add_source_for(local_app, site, seed_names()[2])]
    capture_source(rt, source_id)
    assert debouncer(rt) is True  # processed: exported, without it (not logged yet)
    assert debouncer(rt) is False
    append_captures(rt)
    assert debouncer(rt) is True
    assert json.loads((rt.settings.public_path / STATE_FILE).read_bytes())["logged_through"] == 3


def add_source_for(app: Flask, site, name: str) -> int:
    """A source for one seed article, not captured yet."""
    with app.extensions["samizdat"].Session() as session:
        source_id = add_source(session, site.url(f"/articles/{name}.html"), 60).source.id
        session.commit()
    return source_id


def test_the_embed_and_the_static_copy_share_a_bucket_and_both_stay_public(s3_server, bucket):
    report = SiteReport("s3")
    for prefix in ("embed", "site", "embed"):
        S3Site(bucket, prefix, s3_server.endpoint_url).put([SiteFile("a.txt", b"x", "text/plain", "no-cache")], report)
    client = S3Site(bucket, "site", s3_server.endpoint_url).client
    policy = json.loads(client.get_bucket_policy(Bucket=bucket)["Policy"])
    assert sorted(s["Resource"] for s in policy["Statement"]) == [
        f"arn:aws:s3:::{bucket}/embed/*", f"arn:aws:s3:::{bucket}/site/*"]


def test_the_app_hands_the_export_to_the_scheduler_unless_turned_off(tmp_path, sqlite_url):
    from samizdat.tasks import TASKS_KEY

    for enabled in (True, False):
        app = create_app(make_settings(tmp_path, sqlite_url, archive_publish=enabled))
        ids = [task.id for task in app.extensions[TASKS_KEY]]
        assert ("archive.publish-static-copy" in ids) is enabled and "embed.publish-packs" in ids
        app.extensions["samizdat"].dispose()
