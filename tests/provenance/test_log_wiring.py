"""The app's own log: the scheduler's task appends every stored capture once, the app serves the
log as static files, and a capture downloaded from the reader page verifies against the live app
with the command that page prints."""

from __future__ import annotations

import html
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from provenance.appender import _new_rows, append_captures, log_signer
from provenance.errors import ProvenanceError
from provenance.log import LogClient, LogWriter
from provenance.models import LoggedCapture
from samizdat.app import create_app
from samizdat.tasks import TASKS_KEY
from tests.browser.conftest import serve
from tests.provenance.capturing import capture_and_download

REPO = Path(__file__).resolve().parents[2]
TASK_ID = "provenance.append-captures"


def _task(app):
    """The log's task exactly as the app hands it to the scheduler."""
    return next(task for task in app.extensions[TASKS_KEY] if task.id == TASK_ID)


def _rows(app) -> list[tuple[int, int | None, bool]]:
    with app.extensions["samizdat"].Session() as session:
        return [tuple(r) for r in session.execute(select(
            LoggedCapture.log_index, LoggedCapture.capture_id, LoggedCapture.published
        ).order_by(LoggedCapture.log_index))]


def _page_command(client, capture_id: int) -> str | None:
    page = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    found = re.search(r'<pre class="command">([^<]*)</pre>', page)
    return html.unescape(found.group(1)) if found else None


def test_the_task_logs_a_capture_once_and_it_verifies_against_the_live_app(
        app, client, site, tmp_path):
    runtime = app.extensions["samizdat"]
    folder = tmp_path / "download"
    capture_id = capture_and_download(app, client, site, folder)
    before = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    assert "This capture is not yet in the public log" in before

    task = _task(app)
    assert task.func(runtime) == 1
    assert _rows(app) == [(0, capture_id, True)]
    # A second tick finds nothing new: the same capture is never appended twice.
    assert task.func(runtime) == 0
    assert _rows(app) == [(0, capture_id, True)]

    page = client.get(f"/captures/{capture_id}/").get_data(as_text=True)
    origin = runtime.settings.log_origin_name
    assert f"Entry 0 of the public log <code>{origin}</code>" in page
    command = _page_command(client, capture_id)
    vkey = log_signer(runtime.settings).verifier.vkey
    assert command == (f"python -m provenance.verify FOLDER --log "
                       f"{runtime.settings.public_url}/log --key {vkey}")

    live = serve(app)
    try:
        url = f"http://127.0.0.1:{live.server.server_port}/log"
        # The page's command, run as printed but for the folder and this test server's address.
        args = shlex.split(command)
        args[args.index("FOLDER")] = str(folder)
        args[args.index("--log") + 1] = url
        result = subprocess.run([sys.executable, *args[1:]], cwd=REPO, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "ok  inclusion of entry 0 (under the checkpoint of size 1)" in result.stdout
        assert LogClient(url, origin, log_signer(runtime.settings).verifier).checkpoint().size == 1
    finally:
        live.server.shutdown()
        live.server.server_close()


@pytest.fixture
def local_app(local_settings):
    application = create_app(local_settings)
    yield application
    application.extensions["samizdat"].dispose()


def test_a_second_writer_is_refused_and_nothing_is_recorded(local_app, site, tmp_path):
    runtime = local_app.extensions["samizdat"]
    capture_and_download(local_app, local_app.test_client(), site, tmp_path / "download")
    settings = runtime.settings
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name):
        result = local_app.test_cli_runner().invoke(args=["log", "append"])
        assert result.exit_code == 1
        assert "another writer holds the log" in result.output
        assert _task(local_app).func(runtime) == 0
        assert _rows(local_app) == []
    result = local_app.test_cli_runner().invoke(args=["log", "append"])
    assert result.exit_code == 0, result.output
    assert "1 capture(s) appended, 0 replayed" in result.output
    assert f"verifier key: {log_signer(settings).verifier.vkey}" in result.output


def test_a_pass_that_crashed_before_publishing_is_replayed_not_appended_twice(
        local_app, site, tmp_path):
    runtime = local_app.extensions["samizdat"]
    capture_id = capture_and_download(local_app, local_app.test_client(), site, tmp_path / "d")
    settings = runtime.settings
    # A pass recorded the capture's index and died before its checkpoint was signed.
    with runtime.Session() as session:
        session.add_all(_new_rows(session, 0, 10))
        session.commit()
    assert _rows(local_app) == [(0, capture_id, False)]
    report = append_captures(runtime)
    assert (report.replayed, report.appended, report.size) == (1, 0, 1)
    assert _rows(local_app) == [(0, capture_id, True)]
    client = LogClient(str(settings.log_path), settings.log_origin_name,
                       log_signer(settings).verifier)
    with runtime.Session() as session:
        entry = session.scalar(select(LoggedCapture.entry)).encode()
    assert client.verify(0, expected=entry).index == 0
    assert append_captures(runtime).size == 1


def test_a_log_holding_entries_the_database_does_not_know_is_refused(local_app, site, tmp_path):
    runtime = local_app.extensions["samizdat"]
    capture_and_download(local_app, local_app.test_client(), site, tmp_path / "d")
    settings = runtime.settings
    assert append_captures(runtime).size == 1
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name) as writer:
        writer.append([b'{"planted": 1}'])
        writer.publish()
    with pytest.raises(ProvenanceError, match="the log holds 2 entries but the database records 1"):
        append_captures(runtime)
    with runtime.Session() as session:
        assert session.scalar(select(func.count()).select_from(LoggedCapture)) == 1


def test_the_log_is_served_as_static_files_and_nothing_beside_it(local_app):
    runtime = local_app.extensions["samizdat"]
    settings = runtime.settings
    client = local_app.test_client()
    assert client.get("/log/checkpoint").status_code == 404  # nothing published yet
    assert append_captures(runtime).published  # an empty log still gets its first checkpoint
    key_file = settings.log_signing_key_path
    assert key_file == settings.data_dir / "keys" / "log-ed25519.pem"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name) as writer:
        writer.append(f'{{"n": {i}}}'.encode() for i in range(257))
        writer.publish()

    checkpoint = client.get("/log/checkpoint")
    assert checkpoint.status_code == 200
    assert checkpoint.mimetype == "text/plain"
    assert checkpoint.headers["Cache-Control"] == "no-cache"
    assert checkpoint.data == (settings.log_path / "checkpoint").read_bytes()
    assert checkpoint.data.startswith(f"{settings.log_origin_name}\n257\n".encode())
    for path in ("tile/0/000", "tile/entries/000"):
        full = client.get(f"/log/{path}")
        assert full.status_code == 200, path
        assert full.mimetype == "application/octet-stream"
        assert "immutable" in full.headers["Cache-Control"]
        assert full.data == (settings.log_path / path).read_bytes()
    partial = client.get("/log/tile/0/001.p/1")
    assert partial.status_code == 200 and len(partial.data) == 32
    assert "immutable" not in partial.headers["Cache-Control"]
    # The public key that checks the checkpoint is published beside it, so web nodes and mirrors
    # print the verifier's command without the private key.
    vkey = client.get("/log/verifier-key")
    assert vkey.status_code == 200 and vkey.mimetype == "text/plain"
    assert vkey.data.decode().strip() == log_signer(settings).verifier.vkey

    assert (settings.log_path / ".writer.lock").exists()
    for path in ("/log/.writer.lock", "/log/tile/.writer.lock", "/log/../keys/log-ed25519.pem",
                 "/log/tile/../../keys/log-ed25519.pem",
                 "/log/tile/%2e%2e/%2e%2e/keys/log-ed25519.pem",
                 "/log/tile/..%2f..%2fkeys/log-ed25519.pem", "/log/tile/", "/log/tile/0/999",
                 "/log/keys", "/log/tile/entries/000.p/../../../checkpoint"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert b"PRIVATE" not in response.data
