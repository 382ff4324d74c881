"""The verifier on a real capture: made by the pipeline from the loopback site, downloaded as the
reader's "Verify and take away" offers it, logged with LogWriter, checked by `flask verify` and by
`python -m provenance.verify` against the log on disk and over HTTP."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from fragments.models import Fragment
from mirror.models import Capture
from provenance import note
from provenance.entries import archivist_key_id, parse_entry
from provenance.log import LogWriter
from provenance.records import capture_entry_for, decision_entry_for
from provenance.verify import file_sha256
from samizdat.db import utcnow
from tests.provenance.capturing import capture_and_download

ORIGIN = "samizdat.test/log"
REPO = Path(__file__).resolve().parents[2]
SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def log_key():
    return note.Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def downloaded(app, client, site, tmp_path):
    """A real capture, complete in every back-end, downloaded file by file through the reader's
    URLs; returns (folder, its capture entry, a decision entry on one of its fragments)."""
    folder = tmp_path / "download"
    capture_id = capture_and_download(app, client, site, folder)
    with app.extensions["samizdat"].Session() as session:
        capture = session.get(Capture, capture_id)
        entry = capture_entry_for(session, capture)
        fragment = session.scalars(
            select(Fragment).where(Fragment.capture_id == capture.id)).first()
        decision = decision_entry_for(session, fragment, "approved", utcnow(),
                                      archivist_key_id(b"this log's archivist secret", 1))
    return folder, entry, decision


def _log(directory: Path, key, entries: list[bytes]) -> Path:
    with LogWriter(directory, key) as writer:
        writer.append(entries)
        writer.publish()
    return directory


def _verify(cli, folder, log, vkey: str):
    """Run `flask verify FOLDER --log LOG --key VKEY` in-process."""
    return cli.invoke(args=["verify", str(folder), "--log", str(log), "--key", vkey])


def _fillers(count: int) -> list[bytes]:
    return [f'{{"other": {i}}}'.encode() for i in range(count)]


def test_a_logged_capture_folder_verifies_from_a_directory_and_over_http(
        downloaded, cli, log_key, static_server):
    folder, entry, decision = downloaded
    # The entry built from the rows is the one the folder's manifest rebuilds: the verifier finds it
    assert parse_entry(entry.encode()) == entry and any(p.cid for p in entry.parts)
    assert parse_entry(decision.encode()) == decision and decision.manifest == entry.manifest
    entries = _fillers(300) + [entry.encode(), decision.encode()] + _fillers(5)
    _log(static_server.directory, log_key, entries)

    result = _verify(cli, folder, static_server.directory, log_key.verifier.vkey)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "ok  sha256 of index.html" in lines
    assert "ok  sha256 of capture.warc.gz" in lines
    assert f"ok  inclusion of entry 300 (under the checkpoint of size {len(entries)})" in lines
    assert not any(line.startswith("FAIL") for line in lines)

    # The standalone command, without the app, against the log served by a plain static host.
    standalone = subprocess.run(
        [sys.executable, "-m", "provenance.verify", str(folder), "--log", static_server.url,
         "--key", log_key.verifier.vkey], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert standalone.returncode == 0, standalone.stdout + standalone.stderr
    assert "ok  inclusion of entry 300" in standalone.stdout


@SQLITE_ONLY
def test_a_tampered_file_fails_naming_it(downloaded, cli, log_key, tmp_path):
    folder, entry, _ = downloaded
    log = _log(tmp_path / "log", log_key, [entry.encode()])
    page = folder / "index.html"
    page.write_bytes(page.read_bytes().replace(b"</body>", b"<p>planted</p></body>"))
    result = _verify(cli, folder, log, log_key.verifier.vkey)
    assert result.exit_code == 1
    altered = file_sha256(folder, "index.html")
    assert f"FAIL sha256 of index.html: the file's is {altered}" in result.output
    assert "ok  sha256 of capture.warc.gz" in result.output


@SQLITE_ONLY
def test_an_altered_manifest_is_not_found_in_the_log(downloaded, cli, log_key, tmp_path):
    folder, entry, _ = downloaded
    log = _log(tmp_path / "log", log_key, [entry.encode()])
    manifest = folder / "manifest.json"
    manifest.write_bytes(manifest.read_bytes().replace(b'"url": "http://', b'"url": "https://'))
    result = _verify(cli, folder, log, log_key.verifier.vkey)
    assert result.exit_code == 1
    assert "FAIL inclusion: the capture's entry is not among the log's 1 entries" in result.output


@SQLITE_ONLY
def test_a_capture_removed_from_the_log_fails(downloaded, cli, log_key, tmp_path):
    folder, entry, decision = downloaded
    # The operator republishes the log without the capture, re-signing it with the log key.
    log = _log(tmp_path / "log", log_key, _fillers(3) + [decision.encode()])
    result = _verify(cli, folder, log, log_key.verifier.vkey)
    assert result.exit_code == 1
    assert "ok  sha256 of index.html" in result.output
    assert ("FAIL inclusion: the capture's entry is not among the log's 4 entries: "
            "not logged, or removed") in result.output


@SQLITE_ONLY
def test_an_entry_altered_in_the_bundle_or_a_foreign_key_fails(downloaded, cli, log_key, tmp_path):
    folder, entry, _ = downloaded
    log = _log(tmp_path / "log", log_key, _fillers(2) + [entry.encode()])
    copy = shutil.copytree(log, tmp_path / "altered")
    bundle = copy / "tile/entries/000.p/3"
    bundle.write_bytes(bundle.read_bytes().replace(b'{"other": 1}', b'{"other": 7}'))
    result = _verify(cli, folder, copy, log_key.verifier.vkey)
    assert result.exit_code == 1
    assert "FAIL inclusion: entry 1 does not match its leaf hash: altered after the fact" \
        in result.output

    stranger = note.Ed25519Signer.generate(ORIGIN)
    result = _verify(cli, folder, log, stranger.verifier.vkey)
    assert result.exit_code == 1
    assert "FAIL checkpoint:" in result.output


@SQLITE_ONLY
def test_a_folder_without_a_usable_manifest_or_key_fails_in_one_line(cli, log_key, tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    result = _verify(cli, folder, tmp_path, log_key.verifier.vkey)
    assert result.exit_code == 1
    assert result.output.startswith("FAIL manifest: cannot read manifest.json")
    (folder / "manifest.json").write_text(json.dumps({
        "samizdat_manifest": 2, "url": "https://x.example/", "fetched_at": "2026-12-07T00:00:00Z",
        "parts": [{"name": "../../etc/passwd", "sha256": "0" * 64}]}))
    result = _verify(cli, folder, tmp_path, log_key.verifier.vkey)
    assert result.exit_code == 1 and result.output.startswith("FAIL manifest: part name '../../etc")
    result = _verify(cli, folder, tmp_path, "nonsense")
    assert result.exit_code == 1 and result.output.startswith("FAIL log key:")


def test_the_standalone_verifier_imports_nothing_of_the_app():
    code = ("import sys, provenance.verify; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'flask', 'sqlalchemy', 'samizdat', 'mirror', 'fragments', 'archive', 'embed', "
            "'accounts'}))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
