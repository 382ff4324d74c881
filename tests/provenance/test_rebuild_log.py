"""`flask mirror rebuild-index` agrees with the log: which capture is at which index comes back from
the log published in the bucket, and every place where the log and the bucket differ is one line."""

from __future__ import annotations

import dataclasses
import shutil

from sqlalchemy import select

from embed.signing import load_or_create_signer
from mirror.models import Capture, CapturePart
from mirror.pipeline import capture_source
from mirror.replicas import MANIFEST_MARKER_PREFIX
from mirror.sources import add_source
from mirror.storage import S3Store
from provenance.appender import append_captures, log_signer
from provenance.log import LogClient, LogWriter
from fragments.models import Fragment
from fragments.curation import Reviewer, review
from provenance.models import LoggedCapture, LoggedDecisionRow
from provenance.publish import publish_log
from provenance.records import capture_entry_for
from samizdat import migrate
from samizdat.app import create_app
from tests.conftest import _truncate_all, make_settings
from tests.sites import seed_names


def _capture(app, site, name: str) -> int:
    rt = app.extensions["samizdat"]
    with rt.Session() as session:
        source_id = add_source(session, site.url(f"/articles/{name}.html"), 60).source.id
        session.commit()
    return capture_source(rt, source_id).capture_id


def test_rebuild_restores_log_indexes_from_the_bucket_and_names_every_difference(
        tmp_path, database_url, s3_server, bucket, site):
    one = make_settings(tmp_path / "one", database_url, s3_endpoint_url=s3_server.endpoint_url,
                        s3_bucket=bucket)
    app = create_app(one)
    rt = app.extensions["samizdat"]
    names = seed_names()
    lost = _capture(app, site, names[0])
    _capture(app, site, names[1])
    assert append_captures(rt).size == 2
    forged_for = _capture(app, site, names[2])
    with rt.Session() as session:
        capture = session.get(Capture, forged_for)
        url, fetched_at = capture.url, capture.fetched_at
        genuine = capture_entry_for(session, capture)
        lost_manifest = session.scalar(select(CapturePart.sha256).where(
            CapturePart.capture_id == lost, CapturePart.role == "manifest"))
    # The log holds an entry for the third capture whose manifest is not the one in the bucket.
    forged = dataclasses.replace(genuine, manifest="0" * 64).encode()
    with LogWriter(one.log_path, log_signer(one), one.log_origin_name) as writer:
        writer.append([forged])
        writer.publish()
    published = publish_log(one)
    assert published.failures == [] and published.size == 3
    key = one.log_signing_key_path.read_bytes()
    rt.dispose()
    # The bucket loses the first capture's manifest marker: the rebuild cannot find that capture.
    S3Store(bucket, s3_server.endpoint_url).delete_named(MANIFEST_MARKER_PREFIX + lost_manifest)

    # The server is lost (database and data directory); the operator restores the log's key.
    shutil.rmtree(tmp_path / "one")
    if database_url.startswith("postgresql"):
        _truncate_all(database_url)  # the session's database, emptied: a new server's
        new_url = database_url
    else:
        new_url = f"sqlite:///{tmp_path / 'two.db'}"
        migrate.upgrade(new_url)
    two = make_settings(tmp_path / "two", new_url, s3_endpoint_url=s3_server.endpoint_url,
                        s3_bucket=bucket)
    two.log_signing_key_path.parent.mkdir(parents=True)
    two.log_signing_key_path.write_bytes(key)
    after = create_app(two)
    try:
        result = after.test_cli_runner().invoke(args=["mirror", "rebuild-index"])
        assert result.exit_code == 0, result.output
        out = result.output
        assert "restored 2 sources, 2 captures" in out
        assert "1 of 3 capture entries matched to restored captures; 0 key entries restored; 0 decision entries restored" in out
        assert f"log entry 0 ({site.url('/articles/' + names[0] + '.html')}" in out
        assert "in the log, but the bucket has no such capture" in out
        assert "log entry 2 (" in out and "they differ" in out
        assert f"capture of {url} at {fetched_at:%Y-%m-%dT%H:%M:%SZ}" in out
        assert "restored from the bucket but not in the log" in out
        assert "3 problems skipped" in out

        runtime = after.extensions["samizdat"]
        with runtime.Session() as session:
            rows = session.execute(select(LoggedCapture.log_index, LoggedCapture.capture_id,
                                          LoggedCapture.published).order_by(LoggedCapture.log_index)).all()
            kept_now = session.scalar(select(Capture.id).where(
                Capture.url == site.url(f"/articles/{names[1]}.html")))
        assert [tuple(r) for r in rows] == [(0, None, True), (1, kept_now, True), (2, None, True)]
        # The log came home from the bucket: the next pass goes on with the same log, and logs
        # the capture whose entry differed as a new entry.
        client = LogClient(str(two.log_path), two.log_origin_name, log_signer(two).verifier)
        assert client.checkpoint().size == 3
        reconciled = after.test_cli_runner().invoke(args=["mirror", "reconcile"])
        assert reconciled.exit_code == 0, reconciled.output
        report = append_captures(runtime)
        assert (report.appended, report.size) == (1, 4)
    finally:
        after.extensions["samizdat"].dispose()


def test_without_a_local_key_the_log_is_checked_with_its_published_key_and_left_in_the_bucket(
        tmp_path, sqlite_url, s3_server, bucket, site):
    one = make_settings(tmp_path / "one", sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                        s3_bucket=bucket)
    app = create_app(one)
    _capture(app, site, seed_names()[0])
    # A pack-key rotation is queued: the pass logs it (index 0) before the capture (index 1).
    load_or_create_signer(one.embed_signing_key_path)
    rotated = app.test_cli_runner().invoke(args=["keys", "rotate", "pack"])
    assert rotated.exit_code == 0, rotated.output
    append_captures(app.extensions["samizdat"])
    assert publish_log(one).failures == []
    vkey = log_signer(one).verifier.vkey
    app.extensions["samizdat"].dispose()
    shutil.rmtree(tmp_path / "one")
    url = f"sqlite:///{tmp_path / 'two.db'}"
    migrate.upgrade(url)
    two = make_settings(tmp_path / "two", url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket)
    after = create_app(two)
    try:
        result = after.test_cli_runner().invoke(args=["mirror", "rebuild-index"])
        assert result.exit_code == 0, result.output
        assert "1 of 1 capture entries matched" in result.output and "0 problems skipped" in result.output
        assert "1 key entries restored" in result.output
        assert f"checked with the verifier key published beside the log ({vkey})" in result.output
        assert not (two.log_path / "checkpoint").exists()
        assert not two.log_signing_key_path.exists()  # the rebuild never makes a new log key
        with after.extensions["samizdat"].Session() as session:
            rows = session.execute(select(LoggedCapture.log_index, LoggedCapture.capture_id)
                                   .order_by(LoggedCapture.log_index)).all()
            capture_id = session.scalar(select(Capture.id))
        assert [tuple(r) for r in rows] == [(0, None), (1, capture_id)]
    finally:
        after.extensions["samizdat"].dispose()


def test_an_altered_log_in_the_bucket_restores_nothing_and_says_why(
        tmp_path, sqlite_url, s3_server, bucket, site):
    one = make_settings(tmp_path / "one", sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                        s3_bucket=bucket)
    app = create_app(one)
    _capture(app, site, seed_names()[0])
    append_captures(app.extensions["samizdat"])
    assert publish_log(one).failures == []
    key = one.log_signing_key_path.read_bytes()
    app.extensions["samizdat"].dispose()
    shutil.rmtree(tmp_path / "one")
    # Someone with write access to the bucket rewrites the entry after the fact.
    store = S3Store(bucket, s3_server.endpoint_url)
    bundle = store.get("log/tile/entries/000.p/1")
    assert b"/articles/" in bundle
    store.put_named("log/tile/entries/000.p/1", bundle.replace(b"/articles/", b"/articlez/"))
    url = f"sqlite:///{tmp_path / 'two.db'}"
    migrate.upgrade(url)
    two = make_settings(tmp_path / "two", url, s3_endpoint_url=s3_server.endpoint_url, s3_bucket=bucket)
    two.log_signing_key_path.parent.mkdir(parents=True)
    two.log_signing_key_path.write_bytes(key)
    after = create_app(two)
    try:
        result = after.test_cli_runner().invoke(args=["mirror", "rebuild-index"])
        assert result.exit_code == 0, result.output
        assert "not read, nothing restored from it: entry 0 does not match its leaf hash" in result.output
        assert "1 problems skipped" in result.output
        with after.extensions["samizdat"].Session() as session:
            assert session.scalar(select(LoggedCapture.log_index)) is None
        assert not (two.log_path / "checkpoint").exists()  # an altered log is not copied home
    finally:
        after.extensions["samizdat"].dispose()


def test_decisions_in_the_log_come_back_with_a_rebuild_and_the_log_goes_on(
        tmp_path, sqlite_url, s3_server, bucket, site):
    # Captures and decisions share one index sequence: a rebuild that restored only the capture
    # rows would leave the next pass counting fewer rows than the log holds, refusing to append.
    one = make_settings(tmp_path / "one", sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                        s3_bucket=bucket)
    app = create_app(one)
    rt = app.extensions["samizdat"]
    capture_id = _capture(app, site, seed_names()[0])
    with rt.Session() as session:
        ids = list(session.scalars(select(Fragment.id).where(Fragment.capture_id == capture_id)
                                   .order_by(Fragment.position)))[:2]
        review(session, ids, "approved", Reviewer("rebuild-test archivist"))
        session.commit()
    report = append_captures(rt)
    assert (report.appended, report.decisions, report.size) == (1, 2, 3)
    assert publish_log(one).failures == []
    key = one.log_signing_key_path.read_bytes()
    rt.dispose()
    shutil.rmtree(tmp_path / "one")

    new_url = f"sqlite:///{tmp_path / 'two.db'}"
    migrate.upgrade(new_url)
    two = make_settings(tmp_path / "two", new_url, s3_endpoint_url=s3_server.endpoint_url,
                        s3_bucket=bucket)
    two.log_signing_key_path.parent.mkdir(parents=True)
    two.log_signing_key_path.write_bytes(key)
    after = create_app(two)
    try:
        result = after.test_cli_runner().invoke(args=["mirror", "rebuild-index"])
        assert result.exit_code == 0, result.output
        assert "2 decision entries restored" in result.output
        runtime = after.extensions["samizdat"]
        with runtime.Session() as session:
            rows = session.execute(select(LoggedDecisionRow.log_index, LoggedDecisionRow.fragment_id,
                                          LoggedDecisionRow.published)
                                   .order_by(LoggedDecisionRow.log_index)).all()
        assert sorted((r[0], r[2]) for r in rows) == [(1, True), (2, True)]
        assert sorted(r[1] for r in rows) == sorted(ids)
        # The next pass is not refused: it counts every entry the log holds.
        again = append_captures(runtime)
        assert again.size >= 3
    finally:
        after.extensions["samizdat"].dispose()
