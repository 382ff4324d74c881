"""The log published to S3 (moto) and IPFS (js-ipfs): readers verify a capture from either copy,
only what changed is sent, the checkpoint goes last, a store that was down catches up, and
nothing outside the log directory is ever sent."""

from __future__ import annotations

import dataclasses
import json
import os
import socket

import boto3
import pytest
from sqlalchemy import select

from ops.doctor import run_doctor
from provenance.appender import append_captures, log_signer
from provenance.log import LogClient
from provenance.models import LoggedCapture
from provenance.publish import publish_log
from samizdat.app import create_app
from samizdat.tasks import TASKS_KEY
from tests.conftest import make_settings
from tests.provenance.capturing import capture_and_download


@pytest.fixture
def log_app(tmp_path, sqlite_url, s3_server, ipfs_node, bucket):
    """The app with S3 and IPFS on (SQLite: the log's copies do not depend on the database)."""
    settings = make_settings(tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                             s3_bucket=bucket, ipfs_api=ipfs_node.api_multiaddr)
    application = create_app(settings)
    yield application
    application.extensions["samizdat"].dispose()


def _entry(runtime, index: int) -> bytes:
    with runtime.Session() as session:
        return session.scalar(select(LoggedCapture.entry).where(LoggedCapture.log_index == index)).encode()


def _keys(settings) -> list[str]:
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=settings.s3_bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


def test_a_capture_verifies_from_s3_and_the_ipfs_gateway_and_an_unchanged_log_sends_nothing(
        log_app, site, ipfs_node, tmp_path):
    runtime = log_app.extensions["samizdat"]
    settings = runtime.settings
    capture_and_download(log_app, log_app.test_client(), site, tmp_path / "d")
    # The scheduler's task: one append pass, then the publish.
    task = next(t for t in log_app.extensions[TASKS_KEY] if t.id == "provenance.append-captures")
    assert task.func(runtime) == 1

    origin, verifier = settings.log_origin_name, log_signer(settings).verifier
    entry = _entry(runtime, 0)
    s3_url = f"{settings.s3_public_base}/log"
    assert LogClient(s3_url, origin, verifier).verify(0, expected=entry).checkpoint.size == 1
    keys = _keys(settings)
    assert {"log/checkpoint", "log/verifier-key", "log/tile/0/000.p/1",
            "log/tile/entries/000.p/1"} <= set(keys)
    assert not any(".writer.lock" in k or "/." in k for k in keys)

    # Published a second time with nothing new: no request sends anything.
    again = publish_log(settings)
    assert again.uploaded == 0 and again.failures == [] and again.size == 1
    root = again.root_cid
    assert root
    gateway = f"{ipfs_node.gateway_url}/ipfs/{root}/log"
    assert LogClient(gateway, origin, verifier).verify(0, expected=entry).index == 0


def test_the_checkpoint_is_sent_after_its_tiles_and_content_types_match_the_app(log_app, site, tmp_path):
    runtime = log_app.extensions["samizdat"]
    settings = runtime.settings
    capture_and_download(log_app, log_app.test_client(), site, tmp_path / "d")
    append_captures(runtime)
    report = publish_log(settings)
    for name in ("s3", "ipfs"):
        sent = report.sent[name]
        assert sent[-1] == "checkpoint", sent
        assert {"tile/0/000.p/1", "tile/entries/000.p/1", "verifier-key"} <= set(sent[:-1])
    s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
    head = s3.head_object(Bucket=settings.s3_bucket, Key="log/checkpoint")
    assert head["ContentType"] == "text/plain; charset=utf-8" and head["CacheControl"] == "no-cache"
    tile = s3.head_object(Bucket=settings.s3_bucket, Key="log/tile/0/000.p/1")
    assert tile["ContentType"] == "application/octet-stream"
    assert tile["CacheControl"] == "public, max-age=60"
    # S3 itself says so too: no tile was last modified after the checkpoint.
    for key in ("log/tile/0/000.p/1", "log/tile/entries/000.p/1"):
        assert s3.head_object(Bucket=settings.s3_bucket, Key=key)["LastModified"] <= head["LastModified"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_store_that_was_down_gets_everything_on_the_next_pass_and_doctor_says_so(
        log_app, site, tmp_path):
    runtime = log_app.extensions["samizdat"]
    settings = runtime.settings
    capture_and_download(log_app, log_app.test_client(), site, tmp_path / "d")
    append_captures(runtime)
    down = dataclasses.replace(settings, s3_endpoint_url=f"http://127.0.0.1:{_closed_port()}",
                               ipfs_api="")
    failed = publish_log(down)
    assert failed.failures and failed.failures[0].startswith("s3:")
    assert "checkpoint" not in failed.sent["s3"]
    doctor = {c.name: c for c in run_doctor(runtime)}["log copies"]
    assert doctor.state == "warn" and "s3" in doctor.detail, doctor

    # The store is back: the next pass (no new entry) sends the whole log, the checkpoint last.
    back = publish_log(settings)
    assert back.failures == []
    assert back.sent["s3"][-1] == "checkpoint" and "tile/0/000.p/1" in back.sent["s3"]
    origin, verifier = settings.log_origin_name, log_signer(settings).verifier
    LogClient(f"{settings.s3_public_base}/log", origin, verifier).verify(0, expected=_entry(runtime, 0))
    doctor = {c.name: c for c in run_doctor(runtime)}["log copies"]
    assert doctor.state == "ok", doctor


def test_hostile_entries_in_the_log_directory_are_never_sent(log_app, site, tmp_path):
    runtime = log_app.extensions["samizdat"]
    settings = runtime.settings
    capture_and_download(log_app, log_app.test_client(), site, tmp_path / "d")
    append_captures(runtime)
    secret = tmp_path / "secret.txt"
    secret.write_text("not for publishing")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "also-secret").write_text("nor this")
    log_dir = settings.log_path
    os.symlink(secret, log_dir / "tile" / "planted")
    os.symlink(outside, log_dir / "tile" / "linked")
    os.symlink(secret, log_dir / "tile" / "..planted")
    (log_dir / "tile" / "escape\\..\\..\\x").write_text("a name with backslashes")
    (log_dir / "..\\also-escape").write_text("a dot name: never published either")
    (log_dir / ".hidden").write_text("a dotfile")

    report = publish_log(settings)
    assert report.failures == []
    keys = _keys(settings)
    # The bucket holds the capture's blobs and index markers, and the log under log/: nothing else.
    assert all(k.startswith(("log/", "blobs/", "index/")) for k in keys)
    assert {"log/checkpoint", "log/tile/0/000.p/1"} <= set(keys)
    assert not any(word in k for k in keys for word in ("planted", "linked", "secret", "escape", "hidden"))
    refused = "\n".join(report.refused)
    assert "tile/planted: a symlink" in refused and "tile/linked: a symlink" in refused
    assert "escape" in refused
    for name in ("s3", "ipfs"):
        assert not any(word in p for p in report.sent[name] for word in ("planted", "linked", "escape"))


def test_flask_log_publish_says_what_it_sent(log_app, site, tmp_path):
    runtime = log_app.extensions["samizdat"]
    capture_and_download(log_app, log_app.test_client(), site, tmp_path / "d")
    append_captures(runtime)
    cli = log_app.test_cli_runner()
    first = cli.invoke(args=["log", "publish"])
    assert first.exit_code == 0, first.output
    assert "s3: 4 file(s) sent" in first.output and "ipfs: /ipfs/" in first.output
    second = cli.invoke(args=["log", "publish"])
    assert second.exit_code == 0, second.output
    assert "s3: 0 file(s) sent (0 bytes)" in second.output


def test_a_checkpoints_time_stamp_token_goes_out_with_it_before_it(
        tmp_path, sqlite_url, s3_server, bucket, site, tsa):
    roots = tmp_path / "roots.pem"
    roots.write_bytes((tsa.directory / "ca.pem").read_bytes())
    settings = make_settings(tmp_path, sqlite_url, s3_endpoint_url=s3_server.endpoint_url,
                             s3_bucket=bucket, tsa_urls=tsa.url, tsa_roots=str(roots))
    app = create_app(settings)
    try:
        runtime = app.extensions["samizdat"]
        capture_and_download(app, app.test_client(), site, tmp_path / "d")
        task = next(t for t in app.extensions[TASKS_KEY] if t.id == "provenance.append-captures")
        assert task.func(runtime) == 1  # appends, stamps and publishes in one pass
        record = json.loads((settings.data_dir / "log-publish" / "record.json").read_text())
        assert "timestamp/1/0.tsr" in record["sites"]["s3"]
        s3 = boto3.client("s3", endpoint_url=settings.s3_endpoint_url, region_name=settings.s3_region)
        head = s3.head_object(Bucket=bucket, Key="log/timestamp/1/0.tsr")
        assert head["ContentType"] == "application/timestamp-reply"
        assert head["CacheControl"] == "public, max-age=31536000, immutable"
        token = s3.get_object(Bucket=bucket, Key="log/timestamp/1/0.tsr")["Body"].read()
        assert token == (settings.log_path / "timestamp/1/0.tsr").read_bytes()
        checkpoint = s3.head_object(Bucket=bucket, Key="log/checkpoint")
        assert head["LastModified"] <= checkpoint["LastModified"]
        assert publish_log(settings).uploaded == 0
    finally:
        app.extensions["samizdat"].dispose()
