"""The reader archive's static copy: exported through the app, published to the public dir, moto's
S3 server and the js-ipfs daemon, opened from the js-ipfs gateway in Chromium."""

from __future__ import annotations

import html
import json
import os
import posixpath
import re
import urllib.request
from pathlib import Path

import pytest
from flask import Flask, url_for

from archive.static_copy import (
    EXPORT_LINK,
    NOT_YET_BUILT,
    SEARCH_INDEX,
    STATE_FILE,
    LinkMap,
    StaticExportError,
    publish_static,
    rewrite_html,
)
from archive.tasks import StaticExportDebouncer
from mirror.models import Capture, CapturePart
from mirror.pipeline import capture_source
from mirror.storage.sites import S3Site, SiteFile, SiteReport
from mirror.sources import add_source
from samizdat.app import create_app
from tests.conftest import make_settings
from tests.services import free_port
from tests.archive.reader_pages import add_stand_in_reader_pages
from tests.sites import seed_names

def capture_seeds(app: Flask, site, names: list[str]) -> list[int]:
    """Capture (and process) one source per seed article; return the capture ids."""
    rt = app.extensions["samizdat"]
    ids = []
    for name in names:
        with rt.Session() as session:
            source_id = add_source(session, site.url(f"/articles/{name}.html"), 60).source.id
            session.commit()
        ids.append(capture_source(rt, source_id).capture_id)
    return ids


@pytest.fixture
def published(tmp_path, sqlite_url, s3_server, ipfs_node, bucket, site):
    """An app with S3 and IPFS on, stand-in reader pages, and two captured articles."""
    settings = make_settings(
        tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket,
        ipfs_api=ipfs_node.api_multiaddr, ipfs_gateways=ipfs_node.gateway_url,
        public_url=f"http://127.0.0.1:{free_port()}",
    )
    app = create_app(settings)
    add_stand_in_reader_pages(app)
    capture_seeds(app, site, seed_names()[:2])
    yield app
    app.extensions["samizdat"].dispose()


@pytest.fixture
def local_app(tmp_path, sqlite_url, site):
    """An app on SQLite and the local store only, stand-in pages, one captured article."""
    app = create_app(make_settings(tmp_path, sqlite_url))
    add_stand_in_reader_pages(app)
    capture_seeds(app, site, seed_names()[:1])
    yield app
    app.extensions["samizdat"].dispose()


_LINK = re.compile(r"""\s(?:href|src|action)\s*=\s*"([^"]*)\"""")


def file_path(app: Flask, capture_id: int, name: str) -> str:
    """Where the app serves a capture's file, as a path inside the export."""
    with app.test_request_context("/"):
        return url_for("reader.capture_file", capture_id=capture_id, name=name).lstrip("/")


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


def test_export_opens_from_the_ipfs_gateway_with_every_link_working(published, chromium):
    client = published.test_client()
    assert "Blocked?" not in client.get("/").get_data(as_text=True)
    report = publish_static(published, allow_missing=())
    assert not report.failures, report.failures
    assert report.root_cid and report.ipns_name and not report.missing
    root = export_dir(published)
    assert broken_links(root) == []
    front = (root / "index.html").read_text()
    live = published.extensions["samizdat"].settings.public_url
    # Pages not in the copy go to the live site, said outright; the paginated listing is exported.
    assert f'href="{live}/archive?country=VN"' in front
    assert f'action="{live}/archive"' in front and 'href="https://example.org/elsewhere"' in front
    assert (root / "archive/page/2/index.html").is_file()
    listing = (root / "archive/page/2/index.html").read_text()
    assert 'href="../../index.html"' in listing  # "previous" (page 1) is the listing itself
    assert f"{live}/archive?page=2&amp;country=VN" in listing
    assert 'http-equiv="Content-Security-Policy"' in front
    gateway = published.extensions["samizdat"].settings.gateway_list[0]
    assert report.urls["gateway"] == f"{gateway}/ipfs/{report.root_cid}/index.html"
    assert report.urls["ipns"] == f"ipns://{report.ipns_name}/"

    page = chromium.new_page()
    try:
        page.goto(report.urls["gateway"])
        assert page.locator("h1").inner_text() == "Front page"
        page.click("text=source 1")
        assert page.url.endswith(f"/ipfs/{report.root_cid}/archive/1/index.html")
        page.click("text=replay 1")
        frame = page.frame_locator("iframe")
        assert page.locator("iframe").get_attribute("sandbox") == ""
        assert frame.locator("body").inner_text(timeout=10000).strip()
        page.go_back()
        page.click("text=read 1")
        page.wait_for_url(f"**/ipfs/{report.root_cid}/captures/1/**")
        page.wait_for_load_state()
        assert page.locator("body").inner_text().strip()
        # The optional search reads search-index.json beside the front page.
        page.goto(report.urls["gateway"])
        entries = json.loads((root / SEARCH_INDEX).read_bytes())["entries"]
        assert len(entries) == 2 and all(e["x"] and len(e["x"]) <= 161 for e in entries)
        assert report.search_index_bytes == (root / SEARCH_INDEX).stat().st_size < 2048
        title = entries[0]["t"]
        word = max(title.split(), key=len)
        page.fill("input[type=search]", word)
        page.locator("form[role=search] li a").first.click()
        assert f"/ipfs/{report.root_cid}/archive/" in page.url
    finally:
        page.close()

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
    s3_base = published.extensions["samizdat"].settings.s3_public_base
    with urllib.request.urlopen(f"{s3_base}/site/{raw}.txt") as answer:
        assert answer.headers["Content-Type"] == "application/octet-stream"

    # The dynamic pages now link to this copy ("Blocked? Read the copy on IPFS / S3").
    text = client.get("/").get_data(as_text=True)
    assert f'href="{report.urls["gateway"]}"' in text and f'href="{report.urls["s3"]}"' in text


def test_exports_are_incremental_unchanged_uploads_nothing_and_new_captures_only_their_pages(published, site):
    # The command prints the counts, the root CID and where the copy can be read.
    result = published.test_cli_runner().invoke(args=["archive", "publish"])
    state = json.loads((published.extensions["samizdat"].settings.public_path / STATE_FILE).read_bytes())
    assert result.exit_code == 0 and "skipped" not in result.output, result.output
    assert f"root CID {state['root_cid']}" in result.output
    assert f"gateway: {state['urls']['gateway']}" in result.output and "s3: http" in result.output
    assert re.search(r"^s3: \d+ file\(s\) uploaded", result.output, re.M)
    first = publish_static(published, allow_missing=())
    again = publish_static(published, allow_missing=())
    assert not again.failures
    assert again.written == 0 and again.deleted == 0 and again.unchanged == first.files
    assert [(s.site, s.uploaded, s.bytes, s.deleted) for s in again.sites] == [("s3", 0, 0, 0), ("ipfs", 0, 0, 0)]
    assert again.root_cid == first.root_cid

    before = {p: os.stat(p).st_ino for p in export_dir(published).resolve().rglob("*") if p.is_file()}
    (new_capture,) = capture_seeds(published, site, seed_names()[2:3])
    second = publish_static(published, allow_missing=())
    assert not second.failures
    assert second.unchanged > 0 and second.written < first.files
    manifest = json.loads((published.extensions["samizdat"].settings.data_dir / "static-site/manifest.json").read_bytes())
    new_files = {p for p in manifest["local"] if p.startswith(f"captures/{new_capture}/")}
    assert new_files and second.written <= len(new_files) + 8  # + listing, front page, index, timeline
    s3 = next(s for s in second.sites if s.site == "s3")
    assert s3.uploaded == second.written and second.root_cid != first.root_cid
    # An old capture's files were linked into the new export, not written again.
    old_file = export_dir(published).resolve() / file_path(published, 1, "offline.html")
    assert os.stat(old_file).st_ino in before.values()

    # A capture that leaves the archive leaves the copy: deleted locally, on S3 and in IPFS.
    rt = published.extensions["samizdat"]
    with rt.Session() as session:
        session.get(Capture, new_capture).status = "failed"
        session.commit()
    third = publish_static(published, allow_missing=())
    assert third.deleted >= len(new_files) and not (export_dir(published) / f"captures/{new_capture}").exists()
    assert all(s.deleted == third.deleted for s in third.sites)


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
    listing = rewrite_html('<a href="?page=2">2</a><a href="?page=1">1</a><a href="?page=3">3</a>'
                           "<a href='?q=h%C3%A0&amp;page=2'>q</a><form action='/archive'></form>",
                           links, "/archive", "archive/index.html", "")
    assert '<a href="page/2/index.html">2</a><a href="index.html">1</a>' in listing
    assert f'<a href="{settings.public_url}/archive?page=3">3</a>' in listing  # not exported: live
    assert f'<a href="{settings.public_url}/archive?q=h%C3%A0&amp;page=2">q</a>' in listing
    assert f'<form action="{settings.public_url}/archive">' in listing


def test_not_yet_built_pages_are_skipped_only_when_allow_listed(tmp_path, sqlite_url, site):
    app = create_app(make_settings(tmp_path, sqlite_url))
    try:
        (capture_id,) = capture_seeds(app, site, seed_names()[:1])
        with pytest.raises(StaticExportError, match="/ answered 404"):
            publish_static(app, allow_missing=())
        assert not export_dir(app).exists()
        report = publish_static(app, allow_missing=NOT_YET_BUILT)
        assert "/" in report.missing and "/captures/1/replay" in report.missing
        # /captures/<id>/ redirects to the offline copy on this branch: a meta refresh to it.
        stub = (export_dir(app) / f"captures/{capture_id}/index.html").read_text()
        target = posixpath.relpath(file_path(app, capture_id, "offline.html"), f"captures/{capture_id}")
        assert f'content="0; url={target}"' in stub
        assert broken_links(export_dir(app)) == []
    finally:
        app.extensions["samizdat"].dispose()


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
        add_stand_in_reader_pages(app)
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
