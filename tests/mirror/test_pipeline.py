"""The capture pipeline end to end on real S3, IPFS, SQLite and PostgreSQL."""

import io
import json

from warcio.archiveiterator import ArchiveIterator

from sqlalchemy import func, select

from fragments.models import Fragment
from mirror.models import Capture, Replica
from mirror.pipeline import capture_source, run_sources
from mirror.sources import add_source
from mirror.storage import sha256_hex
import pytest

from tests.sites import PHOTO_PNG, article_html, seed_names


def add(runtime, url, **attribution):
    with runtime.Session() as session:
        source = add_source(session, url, 60, **attribution).source
        session.commit()
        return source.id


def test_capture_is_stored_in_every_backend_and_recorded(runtime, site):
    name = seed_names()[0]
    source_id = add(runtime, site.url(f"/articles/{name}.html"))
    outcome = capture_source(runtime, source_id)
    assert outcome.status == "ok"
    body = article_html(name)
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        assert capture.sha256 == sha256_hex(body)
        assert capture.http_status == 200
        assert capture.content_type == "text/html"
        assert capture.final_url == site.url(f"/articles/{name}.html")
        assert capture.size == len(body)
        assert capture.s3_key == f"blobs/sha256/{capture.sha256}"
        assert capture.cid
        assert capture.title and ("Vietnam" in capture.title or "Viet Nam" in capture.title)
        assert capture.fetched_at.tzinfo is not None
    stores = runtime.stores
    assert stores["local"].get(capture.local_key) == body
    assert stores["s3"].get(capture.s3_key) == body
    assert stores["ipfs"].get(f"{capture.cid}/index.html") == body
    assert capture.complete


def test_capture_yields_attributed_fragments(runtime, site):
    name = seed_names()[1]
    source_id = add(runtime, site.url(f"/articles/{name}.html"), country="VN", collection="vietnam")
    outcome = capture_source(runtime, source_id)
    assert outcome.new_fragments > 3
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        fragments = list(session.scalars(select(Fragment).order_by(Fragment.position)))
    assert len(fragments) == outcome.new_fragments
    for fragment in fragments:
        # New fragments wait for an archivist (the collection is not marked auto-approve).
        assert fragment.status == "pending"
        assert fragment.country == "VN" and fragment.collection == "vietnam"
        assert fragment.capture_id == capture.id
        assert fragment.source_url == capture.url
        assert fragment.sha256 == capture.sha256
        assert fragment.cid == capture.cid
        assert fragment.title == capture.title
        assert fragment.fetched_at == capture.fetched_at


def test_failed_fetches_are_recorded_and_the_run_goes_on(runtime, site):
    good = add(runtime, site.url(f"/articles/{seed_names()[0]}.html"))
    missing = add(runtime, site.url("/missing-page"))
    broken = add(runtime, site.url("/status/500"))
    looping = add(runtime, site.url("/loop/a"))
    summary = run_sources(runtime, [missing, broken, good, looping])
    assert summary.ok == [good]
    assert dict(summary.failed) == {
        missing: "http_error",
        broken: "http_error",
        looping: "redirect_loop",
    }
    with runtime.Session() as session:
        failed = list(session.scalars(select(Capture).where(Capture.status == "failed")))
        assert len(failed) == 3
        for capture in failed:
            assert capture.error_message
            assert capture.sha256 is None and capture.s3_key is None and capture.cid is None
            frags = session.scalars(select(Fragment).where(Fragment.capture_id == capture.id))
            assert list(frags) == []
    # Nothing of the failures reached S3: only the good page's parts are there (page, WARC,
    # stylesheet, image, offline copy, manifest).
    listed = runtime.stores["s3"].client.list_objects_v2(Bucket=runtime.settings.s3_bucket, Prefix="blobs/")
    assert len(listed["Contents"]) == 6


def test_unchanged_capture_uploads_nothing(runtime, site):
    source_id = add(runtime, site.url(f"/articles/{seed_names()[2]}.html"))
    first = capture_source(runtime, source_id)
    second = capture_source(runtime, source_id)
    assert first.status == "ok" and first.new_fragments > 0 and first.uploaded_bytes > 0
    assert second.status == "unchanged"
    assert second.new_fragments == 0 and second.uploaded_bytes == 0
    with runtime.Session() as session:
        a, b = session.get(Capture, first.capture_id), session.get(Capture, second.capture_id)
        assert b.same_as_id == a.id
        assert a.sha256 == b.sha256 and a.s3_key == b.s3_key and a.cid == b.cid
        assert b.parts == []
        # page, WARC, stylesheet, image, offline copy, manifest: once each, in two back-ends
        assert session.scalar(select(func.count()).select_from(Replica)) == 6 * 2


def test_non_html_capture_is_stored_but_not_split(runtime, site):
    outcome = capture_source(runtime, add(runtime, site.url("/plain.txt")))
    assert outcome.status == "ok" and outcome.new_fragments == 0


def test_capture_has_a_warc_and_a_manifest_on_every_backend(runtime, site):
    name = seed_names()[0]
    outcome = capture_source(runtime, add(runtime, site.url(f"/articles/{name}.html")))
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        parts = {p.role: p for p in capture.parts}
        cid = capture.cid
    assert set(parts) == {"page", "warc", "manifest", "asset", "offline"}
    ipfs = runtime.stores["ipfs"]
    warc = ipfs.get(f"{cid}/capture.warc.gz")
    assert sha256_hex(warc) == parts["warc"].sha256
    # A record's payload must be read while the iterator stands on it.
    records = [
        (r.rec_type, r.rec_headers, r.content_stream().read())
        for r in ArchiveIterator(io.BytesIO(warc))
    ]
    assert [rec_type for rec_type, _, _ in records] == ["warcinfo"] + ["response", "request"] * 3
    _, headers, payload = records[1]
    assert headers.get_header("WARC-Target-URI") == site.url(f"/articles/{name}.html")
    assert headers.get_header("WARC-Payload-Digest").startswith("sha1:")
    assert payload == article_html(name)
    manifest = json.loads(runtime.stores["s3"].get(f"blobs/sha256/{parts['manifest'].sha256}"))
    assert manifest == json.loads(ipfs.get(f"{cid}/manifest.json"))
    assert manifest["url"] == site.url(f"/articles/{name}.html")
    by_name = {p["name"]: p for p in manifest["parts"]}
    assert {"index.html", "capture.warc.gz", "offline.html"} <= set(by_name)
    assert len([n for n in by_name if n.startswith("assets/")]) == 2
    assert by_name["index.html"]["sha256"] == sha256_hex(article_html(name))
    for entry in by_name.values():
        assert ipfs.get(entry["cid"]) == runtime.stores["local"].get(entry["sha256"])


def test_vietnamese_page_without_a_declared_charset_comes_out_right(runtime, site):
    outcome = capture_source(runtime, add(runtime, site.url("/vi/windows-1258.html")))
    assert outcome.status == "ok" and outcome.new_fragments >= 1
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        assert capture.charset == "cp1258"
        texts = list(session.scalars(select(Fragment.text).where(Fragment.capture_id == capture.id)))
    assert any("Việt Nam" in text for text in texts), texts


def test_same_site_requisites_are_captured_and_the_offline_copy_runs_nothing(runtime, site):
    name = seed_names()[0]
    before = len(site.hits)
    outcome = capture_source(runtime, add(runtime, site.url(f"/articles/{name}.html")))
    assert set(site.hits[before:]) == {f"/articles/{name}.html", "/static/site.css", "/static/photo.png"}
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        parts = {p.name: p for p in capture.parts}
        cid = capture.cid
    ipfs = runtime.stores["ipfs"]
    assets = {n: p for n, p in parts.items() if n.startswith("assets/")}
    assert {p.content_type for p in assets.values()} == {"text/css", "image/png"}
    png = next(n for n, p in assets.items() if p.content_type == "image/png")
    assert ipfs.get(f"{cid}/{png}") == PHOTO_PNG
    offline = ipfs.get(f"{cid}/offline.html").decode()
    assert "<script" not in offline.lower() and "onerror" not in offline
    assert "script-src 'none'" in offline
    assert f'src="{png}"' in offline  # the image now comes from the capture itself
    assert "cdn.other.example" not in offline  # a cross-site image was not fetched, so it is dropped
    # The page as served is kept untouched, scripts included, as the WARC keeps it.
    assert ipfs.get(f"{cid}/index.html") == article_html(name)


def test_requisites_are_bounded_in_count(settings, site):
    from samizdat.runtime import build_runtime

    rt = build_runtime(settings.replace(requisites_max_count=1))
    before = len(site.hits)
    capture_source(rt, add(rt, site.url(f"/articles/{seed_names()[0]}.html")))
    assert len(site.hits) - before == 2  # the page and one requisite
    rt.dispose()


@pytest.mark.parametrize(
    "path, content_type, role",
    [("/static/photo.png", "image/png", "page"), ("/doc.pdf", "application/pdf", "page"),
     ("/blob.bin", "application/octet-stream", "page")],
)
def test_non_html_content_is_kept_but_not_split(runtime, site, path, content_type, role):
    outcome = capture_source(runtime, add(runtime, site.url(path)))
    assert outcome.status == "ok" and outcome.new_fragments == 0
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        assert capture.content_type == content_type
        assert {p.role for p in capture.parts} == {"page", "warc", "manifest"}


def test_a_page_full_of_scripts_and_iframes_yields_only_its_words(runtime, site):
    outcome = capture_source(runtime, add(runtime, site.url("/hostile.html")))
    assert outcome.status == "ok"
    with runtime.Session() as session:
        texts = list(session.scalars(select(Fragment.text)))
        offline = next(p for p in session.get(Capture, outcome.capture_id).parts if p.role == "offline")
    assert texts and all("alert" not in t and "iframe" not in t.lower() for t in texts)
    page = runtime.stores["local"].get(offline.sha256).decode().lower()
    assert "<script" not in page and "<iframe" not in page and "javascript:" not in page


def test_a_capture_is_split_once_even_when_processed_twice(runtime, site):
    from mirror.pipeline import process_capture

    outcome = capture_source(runtime, add(runtime, site.url(f"/articles/{seed_names()[1]}.html")), process=False)
    first = process_capture(runtime, outcome.capture_id)
    second = process_capture(runtime, outcome.capture_id)
    assert first.new_fragments > 0 and second.new_fragments == 0
    assert first.complete and second.complete


def test_fragment_length_bounds_come_from_the_settings(settings, site):
    from samizdat.runtime import build_runtime

    rt = build_runtime(settings.replace(fragment_min_chars=20, fragment_max_chars=100))
    capture_source(rt, add(rt, site.url(f"/articles/{seed_names()[0]}.html")))
    with rt.Session() as session:
        lengths = [len(t) for t in session.scalars(select(Fragment.text))]
    assert lengths and all(20 <= n <= 100 for n in lengths)
    rt.dispose()
