"""Browser captures in the pipeline: real Chromium, real recording proxy, loopback fixture site.

The guard stays on: private addresses are refused except the fixture site's exact host:port
(SAMIZDAT_FETCH_ALLOW_HOSTS), for the fetcher and the proxy alike.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select
from warcio.archiveiterator import ArchiveIterator

from archive.static_copy import EXPORT_LINK, publish_static
from fragments.models import Fragment
from mirror.jobs import enqueue
from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from provenance.appender import append_captures
from samizdat.app import create_app
from samizdat.runtime import build_runtime
from tests.browser_pages import ARTICLE_PARAGRAPHS, LAZY_IMAGES, BrowserPagesSite
from tests.conftest import CHROMIUM
from tests.services import ROOT, settings_env


@pytest.fixture(scope="module")
def pages():
    site = BrowserPagesSite()
    yield site
    site.close()


def guarded(settings, pages, chromium=CHROMIUM):
    """The settings with the address guard on, the fixture site alone let through."""
    host = f"127.0.0.1:{pages.server.server_port}"
    return dataclasses.replace(settings, fetch_allow_private=False, fetch_allow_hosts=host,
                               chromium=chromium, browser_wall_seconds=30.0)


@pytest.fixture
def app(settings, pages):
    application = create_app(guarded(settings, pages))
    yield application
    application.extensions["samizdat"].dispose()


def add(runtime, url: str, mode: str) -> int:
    with runtime.Session() as session:
        source = add_source(session, url, 60, capture_mode=mode).source
        session.commit()
        return source.id


def page_text(runtime, capture) -> str:
    page = next(p for p in capture.parts if p.role == "page")
    return runtime.stores["local"].get(page.sha256).decode("utf-8")


def test_auto_renders_the_script_built_article_and_keeps_every_word(app, pages):
    runtime = app.extensions["samizdat"]
    plain = add(runtime, pages.url("/article?plain"), "http")
    auto = add(runtime, pages.url("/article"), "auto")
    http_outcome = capture_source(runtime, plain)
    outcome = capture_source(runtime, auto)
    assert http_outcome.status == "ok" and outcome.status == "ok", outcome.message
    with runtime.Session() as session:
        http_capture = session.get(Capture, http_outcome.capture_id)
        # A plain GET holds none of the article's words: the need for the browser.
        assert http_capture.capture_method == "http"
        assert not any(p in page_text(runtime, http_capture) for p in ARTICLE_PARAGRAPHS)
        capture = session.get(Capture, outcome.capture_id)
        assert capture.capture_method == "browser"
        assert capture.method_reason and "app root" in capture.method_reason
        dom = page_text(runtime, capture)
        assert all(p in dom for p in ARTICLE_PARAGRAPHS)
        assert capture.title == "Script-built article"
        fragments = session.scalars(
            select(Fragment.text).where(Fragment.capture_id == capture.id)
        ).all()
        assert sorted(fragments) == sorted(ARTICLE_PARAGRAPHS)
        parts = {p.role: p for p in capture.parts}
        shot = runtime.stores["local"].get(parts["screenshot"].sha256)
        assert shot.startswith(b"\x89PNG\r\n\x1a\n")
        assert runtime.stores["local"].get(parts["thumbnail"].sha256).startswith(b"\x89PNG")
        assert capture.complete  # stored in S3 and IPFS, with its manifest
        manifest = json.loads(runtime.stores["local"].get(parts["manifest"].sha256))
        listed = {p["role"]: p for p in manifest["parts"]}
        assert listed["screenshot"]["sha256"] == parts["screenshot"].sha256
        assert listed["screenshot"]["cid"]
        assert runtime.stores["ipfs"].get(f"{capture.cid}/screenshot.png") == shot
    # The reader's view shows the screenshot; the WACZ holds it and the rendered copy.
    client = app.test_client()
    reader = client.get(f"/captures/{outcome.capture_id}/")
    assert reader.status_code == 200
    assert f"/captures/{outcome.capture_id}/files/screenshot.png" in reader.get_data(as_text=True)
    image = client.get(f"/captures/{outcome.capture_id}/files/screenshot.png")
    assert image.mimetype == "image/png" and "sandbox" in image.headers["Content-Security-Policy"]
    wacz = client.get(f"/archive/{auto}/export.wacz")
    assert wacz.status_code == 200, wacz.get_data(as_text=True)[:300]
    kinds = {}
    with zipfile.ZipFile(io.BytesIO(wacz.data)) as zf:
        for name in zf.namelist():
            if name.startswith("archive/"):
                for record in ArchiveIterator(io.BytesIO(zf.read(name))):
                    kinds[record.rec_headers.get_header("WARC-Target-URI")] = record.content_stream().read()
    assert kinds[f"urn:fullPage:{pages.url('/article')}"] == shot
    assert all(p.encode() in kinds[f"urn:dom:{pages.url('/article')}"] for p in ARTICLE_PARAGRAPHS)
    # The static copy holds the screenshot and the rendered copy, and its reader page shows it.
    append_captures(runtime)
    report = publish_static(app)
    assert not report.failures, report.failures
    root = runtime.settings.public_path / EXPORT_LINK / "captures" / str(outcome.capture_id)
    assert (root / "files" / "screenshot.png").read_bytes() == shot
    assert all(p in (root / "files" / "offline.html").read_text() for p in ARTICLE_PARAGRAPHS)
    assert "files/screenshot.png" in (root / "index.html").read_text()


def test_auto_keeps_the_http_capture_of_a_page_whose_words_came_with_it(app, pages):
    runtime = app.extensions["samizdat"]
    outcome = capture_source(runtime, add(runtime, pages.url("/redirect/end"), "auto"))
    assert outcome.status == "ok"
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        assert (capture.capture_method, capture.method_reason) == ("http", None)
        assert not any(p.role == "screenshot" for p in capture.parts)


def test_a_browser_capture_records_every_lazy_image_and_replays_them(app, pages):
    runtime = app.extensions["samizdat"]
    url = pages.url("/lazy")
    outcome = capture_source(runtime, add(runtime, url, "browser"))
    assert outcome.status == "ok", outcome.message
    images = {pages.url(f"/img/{kind}-{n}.png") for kind in ("native", "observed")
              for n in range(LAZY_IMAGES)}
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        assert (capture.capture_method, capture.method_reason) == ("browser", None)
        parts = {p.role: p for p in capture.parts}
        warc = runtime.stores["local"].get(parts["warc"].sha256)
        offline = runtime.stores["local"].get(parts["offline"].sha256).decode()
        assets = [p.name for p in capture.parts if p.role == "asset"]
    responses = {r.rec_headers.get_header("WARC-Target-URI")
                 for r in ArchiveIterator(io.BytesIO(warc)) if r.rec_type == "response"}
    assert images <= responses
    # The replayed copy shows every image from the capture's own files.
    assert len(assets) == len(images)
    assert all(name in offline for name in assets)
    assert "/img/" not in offline


def test_a_browser_source_at_an_address_the_guard_refuses_fails_with_its_reason(app, pages):
    runtime = app.extensions["samizdat"]
    # Loopback, but not the one host:port let through.
    url = pages.url("/article").replace("127.0.0.1", "127.0.0.2")
    outcome = capture_source(runtime, add(runtime, url, "browser"))
    assert (outcome.status, outcome.reason) == ("failed", "blocked_address"), outcome.message


def test_a_browser_source_without_chromium_fails_cleanly(settings, pages, tmp_path):
    runtime = build_runtime(guarded(settings, pages, chromium=str(tmp_path / "no-chromium")))
    try:
        outcome = capture_source(runtime, add(runtime, pages.url("/article"), "browser"))
        assert (outcome.status, outcome.reason) == ("failed", "no-browser")
        assert "no-chromium" in outcome.message
        with runtime.Session() as session:
            assert session.get(Capture, outcome.capture_id).capture_method == "browser"
        # And auto falls back to HTTP.
        fallback = capture_source(runtime, add(runtime, pages.url("/article?auto"), "auto"))
        assert fallback.status == "ok"
        with runtime.Session() as session:
            assert session.get(Capture, fallback.capture_id).capture_method == "http"
    finally:
        runtime.dispose()


def test_flask_worker_captures_in_the_browser_and_leaves_no_chromium_behind(app, pages):
    runtime = app.extensions["samizdat"]
    settings = runtime.settings
    with runtime.Session() as session:
        source_id = add_source(session, pages.url("/article?worker"), 60, capture_mode="browser").source.id
        session.flush()
        enqueue(session, source_id, "request")
        session.commit()
    # Playwright makes Chromium's profile under TMPDIR: the worker's Chromiums name this directory.
    # A short one: Chromium puts a Unix socket in the profile, and those paths stop at 107 bytes.
    marker = Path(tempfile.mkdtemp(prefix="smz-worker-"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "worker", "--drain"], cwd=ROOT,
        env=settings_env(settings, SAMIZDAT_JOBS_POLL_SECONDS="0.2", TMPDIR=str(marker),
                         SAMIZDAT_FETCH_ALLOW_HOSTS=settings.fetch_allow_hosts,
                         SAMIZDAT_CHROMIUM=settings.chromium),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output = proc.communicate(timeout=240)[0].decode()
    assert proc.returncode == 0, output
    with runtime.Session() as session:
        capture = session.scalars(select(Capture).where(Capture.source_id == source_id)).one()
        assert (capture.status, capture.capture_method) == ("ok", "browser"), output
    assert chromium_processes_under(marker) == []
    shutil.rmtree(marker, ignore_errors=True)


def chromium_processes_under(directory) -> list[str]:
    """Command lines of the running processes that name ``directory`` (their profile's home)."""
    needle = str(directory).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read()
            with open(f"/proc/{entry}/stat") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in argv and state != "Z":
            found.append(argv.replace(b"\0", b" ").decode(errors="replace")[:200])
    return found
