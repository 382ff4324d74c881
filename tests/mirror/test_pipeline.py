"""The capture pipeline end to end on real S3, IPFS, SQLite and PostgreSQL."""

from sqlalchemy import select

from fragments.models import Fragment
from mirror.models import Capture
from mirror.pipeline import capture_source, run_sources
from mirror.sources import add_source
from mirror.storage import S3Store, sha256_hex
from samizdat.runtime import build_runtime
from tests.services import TcpProxy
from tests.sites import article_html, seed_names


def add(runtime, url):
    with runtime.Session() as session:
        source = add_source(session, url, 60).source
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
    assert stores["ipfs"].get(capture.cid) == body


def test_capture_yields_attributed_fragments(runtime, site):
    name = seed_names()[1]
    outcome = capture_source(runtime, add(runtime, site.url(f"/articles/{name}.html")))
    assert outcome.new_fragments > 3
    with runtime.Session() as session:
        capture = session.get(Capture, outcome.capture_id)
        fragments = list(session.scalars(select(Fragment).order_by(Fragment.position)))
    assert len(fragments) == outcome.new_fragments
    for fragment in fragments:
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
    # Nothing of the failures reached S3: only the one good page is there.
    listed = runtime.stores["s3"].client.list_objects_v2(Bucket=runtime.settings.s3_bucket)
    assert len(listed["Contents"]) == 1


def test_recapturing_the_same_page_uploads_nothing_new_and_adds_no_fragments(runtime, site):
    source_id = add(runtime, site.url(f"/articles/{seed_names()[2]}.html"))
    first = capture_source(runtime, source_id)
    second = capture_source(runtime, source_id)
    assert first.new_fragments > 0 and second.new_fragments == 0
    s3: S3Store = runtime.stores["s3"]
    with runtime.Session() as session:
        a, b = session.get(Capture, first.capture_id), session.get(Capture, second.capture_id)
        assert a.sha256 == b.sha256 and a.s3_key == b.s3_key and a.cid == b.cid
    assert s3.put(article_html(seed_names()[2])).uploaded is False


def test_non_html_capture_is_stored_but_not_split(runtime, site):
    outcome = capture_source(runtime, add(runtime, site.url("/plain.txt")))
    assert outcome.status == "ok" and outcome.new_fragments == 0


def test_s3_outage_keeps_the_capture_locally_with_the_reason(settings, site, s3_server):
    proxy = TcpProxy(s3_server.port)
    try:
        rt = build_runtime(settings.replace(s3_endpoint_url=f"http://127.0.0.1:{proxy.port}"))
        source_id = add(rt, site.url(f"/articles/{seed_names()[0]}.html"))
        proxy.cut()
        outcome = capture_source(rt, source_id)
        assert outcome.status == "ok"
        with rt.Session() as session:
            capture = session.get(Capture, outcome.capture_id)
            assert capture.s3_key is None
            assert capture.cid  # IPFS was up
            assert "s3:" in capture.error_message
        assert rt.stores["local"].get(capture.local_key) == article_html(seed_names()[0])
        rt.dispose()
    finally:
        proxy.close()
