"""A capture's WARC as replay tools read it: every hop recorded, responses as received, digests
that verify, and an index (cdxj-indexer, the webrecorder project's) that finds every URL.

The page is reached through a 301 and a 302 and served gzipped; its stylesheet link redirects to a
gzip-served stylesheet (tests/sites.py: /old/<name>.html).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
import surt
from cdxj_indexer.main import CDXJIndexer
from warcio.archiveiterator import ArchiveIterator

from mirror.models import Capture
from mirror.pipeline import capture_source
from mirror.sources import add_source
from mirror.storage import sha256_hex
from samizdat.runtime import build_runtime
from tests.sites import PHOTO_PNG, SITE_CSS, gzip_article_gz, gzip_article_html, seed_names

NAME = seed_names()[0]


@dataclass
class Captured:
    """One finished capture: its row, its files by name (bytes from the spool), its WARC and the
    number of fragments it was split into."""

    capture: Capture
    files: dict[str, bytes]
    warc: bytes
    new_fragments: int


@pytest.fixture
def local_runtime(local_settings):
    """SQLite and the local store only: the WARC and manifest need no remote back-end."""
    rt = build_runtime(local_settings)
    yield rt
    rt.dispose()


def capture_url(runtime, url: str) -> Captured:
    """Add ``url`` as a source, capture and process it, and return what was stored."""
    with runtime.Session() as session:
        source_id = add_source(session, url, 60).source.id
        session.commit()
    outcome = capture_source(runtime, source_id)
    assert outcome.status == "ok", outcome
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        files = {p.name: runtime.stores["local"].get(p.sha256) for p in capture.parts}
        session.expunge(capture)
    return Captured(capture, files, files["capture.warc.gz"], outcome.new_fragments)


@pytest.fixture
def redirected(local_runtime, site) -> Captured:
    """The gzip-served article captured through its two redirects."""
    return capture_url(local_runtime, site.url(f"/old/{NAME}.html"))


@dataclass
class Response:
    """One response record of a WARC, its payload exactly as stored (not content-decoded)."""

    url: str
    status: int
    warc_headers: dict[str, str]
    http_headers: dict[str, str]
    payload: bytes


def records(warc: bytes) -> list[tuple[str, dict[str, str]]]:
    """(WARC-Type, WARC headers) of every record."""
    return [(r.rec_type, dict(r.rec_headers.headers)) for r in ArchiveIterator(io.BytesIO(warc))]


def responses(warc: bytes) -> dict[str, Response]:
    """Every response record by target URI, in WARC order (each URL is fetched once here)."""
    out = {}
    for record in ArchiveIterator(io.BytesIO(warc)):
        if record.rec_type == "response":
            url = record.rec_headers.get_header("WARC-Target-URI")
            out[url] = Response(
                url,
                int(record.http_headers.get_statuscode()),
                dict(record.rec_headers.headers),
                dict(record.http_headers.headers),
                record.raw_stream.read(),  # raw_stream: the payload not content-decoded
            )
    return out


def test_replay_index_finds_the_source_url_the_final_url_and_every_requisite(
    redirected, site, tmp_path
):
    path = tmp_path / "capture.warc.gz"
    path.write_bytes(redirected.warc)
    out = io.StringIO()
    CDXJIndexer(out, [str(path)]).process_all()
    index = {}
    for line in out.getvalue().splitlines():
        urlkey, _timestamp, fields = line.split(" ", 2)
        index[urlkey] = json.loads(fields)
    expected = {
        f"/old/{NAME}.html": "301",  # the source URL, as archivists added it
        f"/moved/{NAME}.html": "302",
        f"/gzip/{NAME}.html": "200",  # the final URL
        "/static/moved.css": "301",  # a requisite as the page links it...
        "/static/site-gz.css": "200",  # ...and where it led
        "/static/photo.png": "200",
    }
    # A replay tool looks a URL up by its SURT key, as pywb does.
    keys = {path: surt.surt(site.url(path)) for path in expected}
    found = {path: index[key]["status"] for path, key in keys.items() if key in index}
    assert found == expected
    assert redirected.capture.final_url == site.url(f"/gzip/{NAME}.html")


def test_responses_are_stored_as_received_with_their_content_encoding(redirected, site):
    by_url = responses(redirected.warc)
    page = by_url[site.url(f"/gzip/{NAME}.html")]
    assert (page.status, page.payload) == (200, gzip_article_gz(NAME))
    assert page.http_headers["Content-Encoding"] == "gzip"
    assert page.http_headers["Content-Length"] == str(len(gzip_article_gz(NAME)))
    source = by_url[site.url(f"/old/{NAME}.html")]
    assert source.status == 301
    assert source.payload == f'<a href="/moved/{NAME}.html">Moved</a>'.encode()  # kept too
    assert by_url[site.url("/static/photo.png")].payload == PHOTO_PNG


def warcio_check(warc: bytes, tmp_path: Path) -> str:
    """Run `warcio check -v` (the real command) on ``warc``; assert it passes, return its report."""
    path = tmp_path / "checked.warc.gz"
    path.write_bytes(warc)
    warcio = Path(sys.executable).parent / "warcio"
    check = subprocess.run([str(warcio), "check", "-v", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    return check.stdout


def test_warcio_check_passes_every_block_and_payload_digest(redirected, tmp_path):
    report = warcio_check(redirected.warc, tmp_path)
    stored = records(redirected.warc)
    exchanges = [t for t, _ in stored if t in ("request", "response")]
    assert len(exchanges) == 12  # six hops: three for the page, two for the stylesheet, the image
    assert report.count("digest pass") == len(stored), report


def test_a_chunked_response_is_stored_dechunked_with_its_content_encoding(
    local_runtime, site, tmp_path
):
    chunked = capture_url(local_runtime, site.url("/chunked/gzip.html"))
    page = responses(chunked.warc)[site.url("/chunked/gzip.html")]
    assert page.payload == gzip_article_gz(NAME)
    assert "Transfer-Encoding" not in page.http_headers  # the stored bytes are not chunked
    assert page.http_headers["Content-Length"] == str(len(page.payload))
    assert page.http_headers["Content-Encoding"] == "gzip"
    report = warcio_check(chunked.warc, tmp_path)
    assert report.count("digest pass") == len(records(chunked.warc)), report
    assert chunked.files["index.html"] == gzip_article_html(NAME)


def test_the_payload_digest_is_of_the_bytes_as_sent(redirected, site):
    page = responses(redirected.warc)[site.url(f"/gzip/{NAME}.html")]
    sha1 = base64.b32encode(hashlib.sha1(gzip_article_gz(NAME)).digest()).decode()
    assert page.warc_headers["WARC-Payload-Digest"] == f"sha1:{sha1}"


def test_each_request_is_linked_to_its_response(redirected):
    stored = records(redirected.warc)
    responses_by_id = {h["WARC-Record-ID"]: h for t, h in stored if t == "response"}
    requests = [h for t, h in stored if t == "request"]
    assert len(requests) == len(responses_by_id) == 6
    for request in requests:
        response = responses_by_id[request["WARC-Concurrent-To"]]
        assert response["WARC-Target-URI"] == request["WARC-Target-URI"]
        assert response["WARC-Date"] == request["WARC-Date"]
    assert len({r["WARC-Concurrent-To"] for r in requests}) == 6  # one request per response


def test_every_hop_has_its_own_sub_second_warc_date(redirected):
    dates = [r.warc_headers["WARC-Date"] for r in responses(redirected.warc).values()]
    parsed = [datetime.strptime(d, "%Y-%m-%dT%H:%M:%S.%fZ") for d in dates]
    # Sent one after another, so strictly later each time: requisites are not dated with the page.
    assert parsed == sorted(parsed) and len(set(parsed)) == len(parsed)


def test_the_manifest_lists_every_hop_from_the_source_to_the_final_url(redirected, site):
    manifest = json.loads(redirected.files["manifest.json"])
    hops = [{k: v for k, v in hop.items() if k != "date"} for hop in manifest["hops"]]
    assert hops == [
        {"url": site.url(f"/old/{NAME}.html"), "status": 301, "location": f"/moved/{NAME}.html"},
        {"url": site.url(f"/moved/{NAME}.html"), "status": 302, "location": f"/gzip/{NAME}.html"},
        {"url": site.url(f"/gzip/{NAME}.html"), "status": 200, "location": None},
    ]
    page_dates = [r.warc_headers["WARC-Date"] for r in responses(redirected.warc).values()][:3]
    assert [hop["date"] for hop in manifest["hops"]] == page_dates


def test_the_rest_of_the_pipeline_uses_the_decoded_bodies(redirected, local_runtime, site):
    decoded = gzip_article_html(NAME)
    capture, files = redirected.capture, redirected.files
    assert files["index.html"] == decoded
    assert capture.sha256 == sha256_hex(decoded) and capture.size == len(decoded)
    assets = {name: data for name, data in files.items() if name.startswith("assets/")}
    assert sorted(assets.values()) == sorted([SITE_CSS, PHOTO_PNG])  # the stylesheet decoded
    css = next(name for name, data in assets.items() if data == SITE_CSS)
    assert f'href="{css}"' in files["offline.html"].decode()
    assert redirected.new_fragments > 3  # split from the decoded page
    # Unchanged detection compares decoded bytes: the same page again stores nothing new.
    assert capture_source(local_runtime, capture.source_id).status == "unchanged"
