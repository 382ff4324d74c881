"""The verifier's inputs beyond a capture folder — a WARC, a WACZ carrying its own proofs, a
fragment by id — and its memory of the checkpoints it saw: a real capture made by the pipeline
from the loopback site, logs written by LogWriter (or the app's appender), served over HTTP on
loopback, and each input altered the ways a forger would."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from archive.wacz import source_selection, write_wacz
from archive.wacz_signing import WaczSigner, load_wacz_signer
from fragments.models import APPROVED, Fragment
from mirror.models import Capture
from provenance import note
from provenance.appender import append_captures, log_signer, publish_verifier_key
from provenance.entries import CaptureEntry, DecisionEntry
from provenance.log import LogWriter
from provenance.records import capture_entry_for, decision_entry_for
from provenance.verify import (
    MAX_DATAPACKAGE_BYTES,
    MAX_FRAGMENT_JSON_BYTES,
    MAX_SCAN_ENTRIES,
    main,
)
from samizdat import migrate
from samizdat.app import create_app
from samizdat.db import utcnow
from tests.archive.test_wacz import validate
from tests.browser.conftest import serve
from tests.conftest import log_decisions, make_settings
from tests.provenance.capturing import capture_and_download
from tests.provenance.conftest import StaticLogServer

ORIGIN = "samizdat.test/log"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Archived:
    """One real capture, downloaded, with an approved fragment, and the app serving it live."""

    app: Flask
    base: str  # the live app's address
    folder: Path
    warc: Path
    capture_id: int
    source_id: int
    entry: CaptureEntry
    fragment_id: str
    decision: DecisionEntry
    wacz_key_file: Path


@pytest.fixture(scope="module")
def archived(tmp_path_factory, site):
    """Built once (SQLite, local store: the verifier reads downloads, not the database)."""
    tmp = tmp_path_factory.mktemp("verify-inputs")
    url = f"sqlite:///{tmp / 'samizdat.db'}"
    migrate.upgrade(url)
    app = create_app(make_settings(tmp, url))
    folder = tmp / "download"
    capture_id = capture_and_download(app, app.test_client(), site, folder)
    with app.extensions["samizdat"].Session() as session:
        capture = session.get(Capture, capture_id)
        entry = capture_entry_for(session, capture)
        fragment = session.scalars(select(Fragment).where(Fragment.capture_id == capture_id)
                                   .order_by(Fragment.position)).first()
        fragment.status = APPROVED  # as an archivist's approval leaves it
        decision = decision_entry_for(session, fragment, "approved", utcnow())
        session.commit()
        source_id, fragment_id = capture.source_id, fragment.id
    log_decisions(app)  # the archive serves the fragment once its own log holds the approval
    key_file = tmp / "wacz-key.json"
    key_file.write_bytes(app.test_client().get("/archive/wacz-key.json").data)
    live = serve(app)
    yield Archived(app, f"http://127.0.0.1:{live.server.server_port}", folder,
                   folder / "capture.warc.gz", capture_id, source_id, entry, fragment_id, decision,
                   key_file)
    live.server.shutdown()
    live.server.server_close()
    app.extensions["samizdat"].dispose()


@pytest.fixture(scope="module")
def log_key():
    return note.Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def logs(tmp_path):
    """A static host on loopback serving every log under ``tmp_path / 'logs'``."""
    root = tmp_path / "logs"
    root.mkdir()
    server = StaticLogServer(root)
    server.root = root
    server.base = server.url.rsplit("/", 1)[0]
    yield server
    server.close()


def fillers(count: int, tag: str = "other") -> list[bytes]:
    return [f'{{"{tag}": {i}}}'.encode() for i in range(count)]


def write_log(directory: Path, key, entries: list[bytes]) -> Path:
    with LogWriter(directory, key) as writer:
        writer.append(entries)
        writer.publish()
    return directory


def verify(*args: str) -> tuple[int, list[str]]:
    """The verifier in-process, as `python -m provenance.verify ARGS` runs it."""
    lines: list[str] = []
    code = main([str(a) for a in args], echo=lines.append)
    return code, lines


def failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


# --- a WARC -----------------------------------------------------------------------------------

def test_a_genuine_warc_verifies_by_scanning_the_log_or_by_its_entry_index(
        archived, log_key, logs):
    entries = fillers(300) + [archived.entry.encode()] + fillers(5, "later")
    write_log(logs.root / "log", log_key, entries)
    vkey = log_key.verifier.vkey
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey)
    assert code == 0, lines
    assert f"ok  inclusion of entry 300 (under the checkpoint of size {len(entries)})" in lines
    assert any(line.startswith(f"ok  the WARC is capture.warc.gz of the capture of "
                               f"{archived.entry.url}") and "after scanning 6 entries" in line
               for line in lines), lines
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey, "--entry", "300")
    assert code == 0, lines
    assert any("entry 300, given with --entry" in line for line in lines), lines


def test_a_warc_altered_by_one_byte_is_vouched_for_by_no_entry(archived, log_key, logs, tmp_path):
    write_log(logs.root / "log", log_key, fillers(3) + [archived.entry.encode()])
    altered = tmp_path / "capture.warc.gz"
    data = bytearray(archived.warc.read_bytes())
    data[len(data) // 2] ^= 0x01
    altered.write_bytes(bytes(data))
    vkey = log_key.verifier.vkey
    code, lines = verify(altered, "--log", logs.url, "--key", vkey)
    assert code == 1
    assert failures(lines) == ["FAIL inclusion: no capture entry holds this WARC among the 4 "
                               "entries scanned of the log's 4"]
    code, lines = verify(altered, "--log", logs.url, "--key", vkey, "--entry", "3")
    assert code == 1
    assert failures(lines) == ["FAIL entry 3: it is not a capture entry holding this WARC's sha256"]
    code, lines = verify(altered, "--log", logs.url, "--key", vkey, "--entry", "9")
    assert code == 1 and failures(lines) == ["FAIL inclusion: entry 9 is not below tree size 4"]
    code, lines = verify(archived.folder, "--log", logs.url, "--key", vkey, "--entry", "3")
    assert code == 1 and lines == [
        "FAIL input: --entry N is for a WARC (a folder or a WACZ names its entry)"]


# --- the checkpoint seen before ---------------------------------------------------------------

def test_each_run_proves_the_log_extends_the_checkpoint_seen_before(
        archived, log_key, logs, verifier_state):
    history = fillers(5) + [archived.entry.encode()]
    write_log(logs.root / "log", log_key, history)
    vkey = log_key.verifier.vkey
    code, lines = verify(archived.folder, "--log", logs.url, "--key", vkey)
    assert code == 0, lines
    assert f"ok  first checkpoint seen of {ORIGIN} (in {verifier_state})" in lines
    write_log(logs.root / "log", log_key, fillers(4, "newer"))  # the log grows
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey)
    assert code == 0, lines
    prefix = "ok  consistent with the checkpoint of size 6 seen on "
    seen = [line for line in lines if line.startswith(prefix)]
    assert len(seen) == 1 and seen[0].endswith(" UTC"), lines
    assert "ok  checkpoint of size 10 remembered (in %s)" % verifier_state in lines
    # --no-state neither compares nor remembers; --state chooses another place.
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey, "--no-state")
    assert code == 0 and not any("seen" in line or "remembered" in line for line in lines)


def test_a_forked_log_served_after_the_real_one_fails_and_the_checkpoint_seen_is_kept(
        archived, log_key, logs, tmp_path):
    state = tmp_path / "my-state"
    vkey = log_key.verifier.vkey
    write_log(logs.root / "real", log_key, fillers(5) + [archived.entry.encode()])
    code, lines = verify(archived.warc, "--log", f"{logs.base}/real", "--key", vkey,
                         "--state", state)
    assert code == 0, lines
    remembered = {p.name: p.read_bytes() for p in state.iterdir()}
    # The same origin and key, another history: what a seized server shows one reader.
    fork = fillers(5, "planted") + [archived.entry.encode()] + fillers(2)
    write_log(logs.root / "fork", log_key, fork)
    code, lines = verify(archived.warc, "--log", f"{logs.base}/fork", "--key", vkey,
                         "--state", state)
    assert code == 1
    [failed] = failures(lines)
    assert failed.startswith("FAIL consistency: the log was rewritten: ")
    assert "(the checkpoint of size 6 seen on " in failed
    assert not any("inclusion" in line for line in lines)  # nothing is proven under a fork
    # Another history of the very same size is a fork too.
    write_log(logs.root / "twin", log_key, fillers(5, "twin") + [archived.entry.encode()])
    code, lines = verify(archived.warc, "--log", f"{logs.base}/twin", "--key", vkey,
                         "--state", state)
    assert code == 1 and failures(lines)[0].startswith("FAIL consistency: the log was rewritten")
    assert {p.name: p.read_bytes() for p in state.iterdir()} == remembered


def test_a_rolled_back_checkpoint_fails_as_a_rollback(archived, log_key, logs):
    vkey = log_key.verifier.vkey
    history = fillers(3) + [archived.entry.encode()] + fillers(4, "later")
    write_log(logs.root / "log", log_key, history)
    assert verify(archived.warc, "--log", logs.url, "--key", vkey)[0] == 0
    # The same history cut back to before the last entries, re-signed with the log key.
    write_log(logs.root / "old", log_key, history[:5])
    code, lines = verify(archived.warc, "--log", f"{logs.base}/old", "--key", vkey)
    assert code == 1
    [failed] = failures(lines)
    assert failed.startswith(
        "FAIL consistency: the log was rewritten: checkpoint of size 5 is older than the size 8 "
        "seen before: rolled back (the checkpoint of size 8 seen on "), lines


def test_a_tile_of_the_wrong_size_or_a_badly_signed_checkpoint_is_refused(
        archived, log_key, logs):
    vkey = log_key.verifier.vkey
    write_log(logs.root / "log", log_key, fillers(2) + [archived.entry.encode()])
    tile = logs.root / "log" / "tile/0/000.p/3"
    good = tile.read_bytes()
    tile.write_bytes(good[:-1])
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey, "--no-state")
    assert code == 1
    assert failures(lines) == ["FAIL inclusion: tile of 95 bytes, a tile of width 3 has 96"]
    tile.write_bytes(good + b"\0" * 4096)  # oversized: refused after one byte too many
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey, "--no-state")
    assert code == 1
    assert failures(lines) == ["FAIL inclusion: tile/0/000.p/3 is larger than 96 bytes"]
    tile.write_bytes(good)
    checkpoint = logs.root / "log" / "checkpoint"
    signed = bytearray(checkpoint.read_bytes())
    signed[-10] = ord("A") if signed[-10] != ord("A") else ord("B")
    checkpoint.write_bytes(bytes(signed))
    code, lines = verify(archived.warc, "--log", logs.url, "--key", vkey)
    assert code == 1
    assert failures(lines) == [f"FAIL checkpoint: invalid signature for key {ORIGIN}+"
                               f"{log_key.key_id:08x}"]


# --- a fragment -------------------------------------------------------------------------------

def test_an_approved_fragment_verifies_against_its_logged_decision(archived, log_key, logs):
    vkey = log_key.verifier.vkey
    later = dataclasses.replace(archived.decision, decision="rejected")
    write_log(logs.root / "log", log_key, [archived.entry.encode(), archived.decision.encode()]
              + fillers(3))
    args = ("--fragment", archived.fragment_id, "--archive", archived.base, "--log", logs.url,
            "--key", vkey)
    code, lines = verify(*args)
    assert code == 0, lines
    assert "ok  the text is the one approved" in lines
    assert "ok  inclusion of entry 1 (under the checkpoint of size 5)" in lines
    assert lines[0].startswith(f"ok  fragment {archived.fragment_id} as {archived.base} serves it")

    # A later decision rejected it: the archive should not serve it any more.
    write_log(logs.root / "log", log_key, [later.encode()])
    code, lines = verify(*args)
    assert code == 1
    assert failures(lines) == ["FAIL decision: the log's latest decision on it is 'rejected': the "
                               "archive should not be serving it"]


def test_a_fragment_whose_text_changed_outside_the_log_or_that_is_not_logged_fails(
        archived, log_key, logs):
    vkey = log_key.verifier.vkey
    other_text = dataclasses.replace(archived.decision, text_sha256="ab" * 32)
    write_log(logs.root / "log", log_key, [archived.entry.encode(), other_text.encode()])
    args = ("--archive", archived.base, "--log", logs.url, "--key", vkey, "--no-state")
    code, lines = verify("--fragment", archived.fragment_id, *args)
    assert code == 1
    assert failures(lines) == [f"FAIL text: the log vouches for text sha256 {'ab' * 32}, the "
                               f"archive serves {archived.decision.text_sha256}: the text was "
                               "changed outside the log"]
    unknown = "0" * 32
    code, lines = verify("--fragment", unknown, *args)
    assert code == 1 and failures(lines) == [
        f"FAIL fragment {unknown}: {archived.base}/fragments/{unknown}.json: HTTP 404"]
    code, lines = verify("--fragment", "../../etc/passwd", *args)
    assert code == 1 and failures(lines) == [
        "FAIL fragment id: a fragment id is 32 lowercase hex digits"]
    write_log(logs.root / "empty", log_key, [archived.entry.encode()])
    code, lines = verify("--fragment", archived.fragment_id, "--archive", archived.base,
                         "--log", f"{logs.base}/empty", "--key", vkey, "--no-state")
    assert code == 1 and failures(lines) == [
        "FAIL decision: no decision on this fragment among the 1 entries scanned of the log's 1: "
        "not (yet) logged"]


def test_an_oversized_fragment_answer_is_refused_unread(archived, log_key, logs):
    # A hostile "archive": a static host whose fragment JSON never ends.
    write_log(logs.root / "log", log_key, [archived.decision.encode()])
    (logs.root / "fragments").mkdir()
    (logs.root / "fragments" / f"{archived.fragment_id}.json").write_bytes(
        b'{"text": "' + b"x" * (MAX_FRAGMENT_JSON_BYTES + 10) + b'"}')
    code, lines = verify("--fragment", archived.fragment_id, "--archive", logs.base, "--log",
                         logs.url, "--key", log_key.verifier.vkey)
    assert code == 1
    assert failures(lines) == [
        f"FAIL fragment {archived.fragment_id}: {logs.base}/fragments/{archived.fragment_id}.json "
        f"is larger than {MAX_FRAGMENT_JSON_BYTES} bytes"]


# --- a WACZ -----------------------------------------------------------------------------------

def export_wacz(archived: Archived, log_dir: Path, index: int, out: Path) -> Path:
    """The source's WACZ, its capture at ``index`` of the log in ``log_dir``, as the app writes
    it (write_wacz with the app's WACZ key)."""
    runtime = archived.app.extensions["samizdat"]
    with runtime.Session() as session:
        selection = source_selection(session, archived.source_id)
    selection = dataclasses.replace(selection, captures=[
        dataclasses.replace(c, log_index=index) for c in selection.captures])
    with open(out, "wb") as fh:
        write_wacz(runtime.stores["local"], selection, fh, signer=wacz_signer(archived),
                   log_path=log_dir)
    return out


def wacz_signer(archived: Archived) -> WaczSigner:
    return load_wacz_signer(archived.app.extensions["samizdat"].settings.wacz_signing_key_path)


def repackaged(path: Path, out: Path, signer: WaczSigner, **members: bytes) -> Path:
    """A copy of the WACZ with ``members`` replaced and datapackage.json, its digest and the
    signature all made anew: what a forger holding ``signer`` produces."""
    with zipfile.ZipFile(path) as src:
        files = {info.filename: src.read(info.filename) for info in src.infolist()}
    files.update(members)
    package = json.loads(files["datapackage.json"])
    for resource in package["resources"]:
        data = files[resource["path"]]
        resource["hash"] = "sha256:" + hashlib.sha256(data).hexdigest()
        resource["bytes"] = len(data)
    files["datapackage.json"] = json.dumps(package, indent=2).encode()
    digest = "sha256:" + hashlib.sha256(files["datapackage.json"]).hexdigest()
    files["datapackage-digest.json"] = json.dumps({
        "path": "datapackage.json", "hash": digest,
        "signedData": signer.signed_data(digest, package["created"], "forger")}).encode()
    with zipfile.ZipFile(out, "w") as dst:
        for name, data in files.items():
            dst.writestr(name, data)
    return out


@pytest.fixture
def logged_wacz(archived, log_key, logs, tmp_path):
    """A WACZ whose capture is entry 3 of a served log of 6, with a time-stamp token beside the
    checkpoint; returns (wacz, log dir)."""
    log_dir = write_log(logs.root / "log", log_key,
                        fillers(3) + [archived.entry.encode()] + fillers(2, "later"))
    publish_verifier_key(log_dir, log_key.verifier.vkey)
    (log_dir / "timestamp" / "6").mkdir(parents=True)
    (log_dir / "timestamp" / "6" / "tsa-0.tsr").write_bytes(b"a token's DER bytes")
    (log_dir / "timestamp" / "6" / ".tmp-tsa-1.tsr").write_bytes(b"half written")  # not published
    return export_wacz(archived, log_dir, 3, tmp_path / "logged.wacz"), log_dir


def test_a_wacz_carries_its_proofs_and_verifies_offline_and_against_the_live_log(
        archived, logged_wacz, log_key, logs):
    wacz, log_dir = logged_wacz
    warc = f"archive/capture-{archived.capture_id}.warc.gz"
    with zipfile.ZipFile(wacz) as zf:
        listed = {r["path"] for r in json.loads(zf.read("datapackage.json"))["resources"]}
        proof = json.loads(zf.read("provenance/proof-3.json"))
        assert zf.read("provenance/entry-3.json") == archived.entry.encode()
        assert zf.read("provenance/checkpoint") == (log_dir / "checkpoint").read_bytes()
        assert zf.read("provenance/verifier-key").decode().strip() == log_key.verifier.vkey
    assert {"provenance/checkpoint", "provenance/verifier-key", "provenance/entry-3.json",
            "provenance/proof-3.json", "provenance/timestamp-6-tsa-0.tsr"} <= listed
    assert proof["index"] == 3 and proof["tree_size"] == 6 and proof["warc"] == warc
    assert [p for p in listed if p.startswith("provenance/timestamp")] == [
        "provenance/timestamp-6-tsa-0.tsr"]
    assert len(proof["hashes"]) == 3
    assert validate(wacz).returncode == 0  # py-wacz's structural validation still passes

    vkey = log_key.verifier.vkey
    code, lines = verify(wacz, "--key", vkey, "--wacz-key", archived.wacz_key_file)
    assert code == 0, lines
    assert f"ok  sha256 of {warc}" in lines
    assert any(line.startswith("ok  signature (by the pinned WACZ key ") for line in lines)
    assert (f"ok  inclusion of entry 3 ({warc}, the capture of {archived.entry.url} at "
            f"{archived.entry.time}, under the WACZ's checkpoint of size 6)") in lines
    assert ("ok  1 time-stamp token(s) carried for the checkpoint (not checked: give the TSAs' "
            "roots with --tsa-root)") in lines
    assert not any("live log" in line for line in lines)  # offline: no --log, nothing fetched

    write_log(log_dir, log_key, fillers(3, "newest"))
    code, lines = verify(wacz, "--key", vkey, "--wacz-key",
                         f"{archived.base}/archive/wacz-key.json", "--log", logs.url)
    assert code == 0, lines
    assert "ok  the WACZ's checkpoint of size 6 is consistent with the live log of size 9" in lines


def test_a_wacz_signed_by_an_unpinned_key_fails_unless_allowed(archived, logged_wacz, log_key):
    wacz, _ = logged_wacz
    code, lines = verify(wacz, "--key", log_key.verifier.vkey)
    assert code == 1
    [failed] = failures(lines)
    assert failed.startswith("FAIL signature: signature made by an unpinned key (")
    code, lines = verify(wacz, "--key", log_key.verifier.vkey, "--allow-unpinned")
    assert code == 0, lines


def test_an_altered_wacz_fails_with_its_reason(archived, logged_wacz, log_key, tmp_path):
    wacz, _ = logged_wacz
    vkey, pinned = log_key.verifier.vkey, archived.wacz_key_file
    warc = f"archive/capture-{archived.capture_id}.warc.gz"
    with zipfile.ZipFile(wacz) as zf:
        original = {name: zf.read(name) for name in zf.namelist()}

    # A WARC changed inside the ZIP, nothing else touched.
    flipped = bytearray(original[warc])
    flipped[100] ^= 0x01
    changed = tmp_path / "changed.wacz"
    with zipfile.ZipFile(changed, "w") as dst:
        for name, data in original.items():
            dst.writestr(name, bytes(flipped) if name == warc else data)
    code, lines = verify(changed, "--key", vkey, "--wacz-key", pinned)
    assert code == 1
    assert failures(lines)[0].startswith(f"FAIL sha256 of {warc}: the file's is ")
    assert failures(lines)[0].endswith("the file was altered")

    # The embedded entry altered, the package re-signed even with the archive's own WACZ key
    # (stolen): the log's proof gives it away.
    entry = original["provenance/entry-3.json"].replace(b"http://", b"https://")
    forged = repackaged(wacz, tmp_path / "entry.wacz", wacz_signer(archived),
                        **{"provenance/entry-3.json": entry})
    code, lines = verify(forged, "--key", vkey, "--wacz-key", pinned)
    assert code == 1
    assert failures(lines) == [
        "FAIL inclusion of entry 3: inclusion proof of leaf 3 does not lead to the root of tree "
        "size 6", f"FAIL {warc}: no log proof for it: not in the log when exported"]

    # A proof hash flipped.
    proof = json.loads(original["provenance/proof-3.json"])
    proof["hashes"][1] = proof["hashes"][0]
    forged = repackaged(wacz, tmp_path / "proof.wacz", wacz_signer(archived),
                        **{"provenance/proof-3.json": json.dumps(proof).encode()})
    code, lines = verify(forged, "--key", vkey, "--wacz-key", pinned)
    assert code == 1
    assert failures(lines)[0] == ("FAIL inclusion of entry 3: inclusion proof of leaf 3 does not "
                                  "lead to the root of tree size 6")

    # The embedded checkpoint re-signed by another key under the log's name.
    stranger = note.Ed25519Signer.generate(ORIGIN)
    text = original["provenance/checkpoint"].split(b"\n\n")[0].decode() + "\n"
    forged = repackaged(wacz, tmp_path / "checkpoint.wacz", wacz_signer(archived),
                        **{"provenance/checkpoint": note.sign_note(text, [stranger])})
    code, lines = verify(forged, "--key", vkey, "--wacz-key", pinned)
    assert code == 1
    assert failures(lines) == ["FAIL provenance/checkpoint: note has no signature by a trusted key"]

    # Re-signed by a forger's own key: the pinned key refuses it.
    other = load_wacz_signer(tmp_path / "forger.pem")
    forged = repackaged(wacz, tmp_path / "other.wacz", other)
    code, lines = verify(forged, "--key", vkey, "--wacz-key", pinned)
    assert code == 1
    assert failures(lines) == [f"FAIL signature: made by key {other.key_id}, not by the pinned "
                               "WACZ key"]

    # A file slipped in that datapackage.json does not list.
    with zipfile.ZipFile(changed, "w") as dst:
        for name, data in original.items():
            dst.writestr(name, data)
        dst.writestr("archive/planted.warc.gz", b"words never said")
    code, lines = verify(changed, "--key", vkey, "--wacz-key", pinned)
    assert code == 1
    assert failures(lines) == ["FAIL archive/planted.warc.gz: not listed in datapackage.json: "
                               "nothing vouches for it"]


def test_an_oversized_or_broken_wacz_is_refused_unread(log_key, tmp_path):
    vkey = log_key.verifier.vkey
    huge = tmp_path / "huge.wacz"
    with zipfile.ZipFile(huge, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("datapackage.json", b" " * (MAX_DATAPACKAGE_BYTES + 1))
    code, lines = verify(huge, "--key", vkey, "--allow-unpinned")
    assert code == 1
    assert lines == [f"FAIL datapackage.json: datapackage.json is larger than "
                     f"{MAX_DATAPACKAGE_BYTES} bytes"]
    broken = tmp_path / "broken.wacz"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    code, lines = verify(broken, "--key", vkey)
    assert code == 1 and lines[0].startswith("FAIL WACZ: not a readable ZIP file")


def test_the_apps_exported_wacz_verifies_with_the_standalone_command(archived, tmp_path):
    runtime = archived.app.extensions["samizdat"]
    settings = runtime.settings
    # The app's own log now holds the capture (entry 0) and its approved fragment's decision.
    append_captures(runtime)
    out = tmp_path / "export.wacz"
    result = archived.app.test_cli_runner().invoke(
        args=["archive", "export-wacz", "--source", str(archived.source_id), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert validate(out).returncode == 0
    vkey = log_signer(settings).verifier.vkey
    standalone = subprocess.run(
        [sys.executable, "-m", "provenance.verify", str(out), "--key", vkey, "--wacz-key",
         f"{archived.base}/archive/wacz-key.json", "--log", f"{archived.base}/log"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert standalone.returncode == 0, standalone.stdout + standalone.stderr
    assert "ok  inclusion of entry 0 (archive/capture-" in standalone.stdout
    assert "ok  the WACZ's checkpoint of size 2 is consistent with the live log of size 2" \
        in standalone.stdout
    # And `flask verify` is the same command.
    result = archived.app.test_cli_runner().invoke(args=[
        "verify", str(out), "--key", vkey, "--wacz-key", str(archived.wacz_key_file)])
    assert result.exit_code == 0, result.output


def test_only_an_approved_fragment_has_a_public_json(archived):
    client = archived.app.test_client()
    response = client.get(f"/fragments/{archived.fragment_id}.json")
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == "*"
    body = response.get_json()
    assert body["id"] == archived.fragment_id
    assert hashlib.sha256(body["text"].encode()).hexdigest() == archived.decision.text_sha256
    with archived.app.extensions["samizdat"].Session() as session:
        pending = session.scalars(select(Fragment.id).where(
            Fragment.capture_id == archived.capture_id, Fragment.status != APPROVED)).first()
    assert pending is not None
    assert client.get(f"/fragments/{pending}.json").status_code == 404
    assert client.get("/fragments/nonsense.json").status_code == 404


class _LyingLogHandler(SimpleHTTPRequestHandler):
    """Serves a log directory, but cuts every level-0 tile short of the Content-Length it
    announces, and answers the checkpoint of ``/broken/`` with no HTTP at all."""

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass

    def do_GET(self):  # noqa: N802 - the stdlib's name
        if self.path == "/broken/checkpoint":
            self.wfile.write(b"NONSENSE\r\n\r\n")
            self.close_connection = True
            return None
        if not self.path.startswith("/log/tile/0/"):
            return super().do_GET()
        data = (Path(self.directory) / self.path.lstrip("/")).read_bytes()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.close_connection = True
        return None


def test_a_tile_cut_short_or_an_answer_that_is_not_http_is_refused_in_one_line(
        archived, log_key, tmp_path):
    write_log(tmp_path / "log", log_key, fillers(2) + [archived.entry.encode()])
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
        _LyingLogHandler, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    vkey = log_key.verifier.vkey
    try:
        code, lines = verify(archived.warc, "--log", f"{base}/log", "--key", vkey)
        assert code == 1
        assert failures(lines) == ["FAIL inclusion: tile of 48 bytes, a tile of width 3 has 96"]
        code, lines = verify(archived.warc, "--log", f"{base}/broken", "--key", vkey)
        assert code == 1
        [failed] = failures(lines)
        assert failed.startswith(f"FAIL checkpoint: {base}/broken/checkpoint: "), lines
    finally:
        server.shutdown()
        server.server_close()


def test_a_wacz_member_that_cannot_be_inflated_fails_in_one_line(archived, logged_wacz, log_key,
                                                                 tmp_path):
    wacz, _ = logged_wacz
    data = bytearray(wacz.read_bytes())
    with zipfile.ZipFile(wacz) as zf:
        info = zf.getinfo("pages/pages.jsonl")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    # Garble the deflated bytes in place (past the local header): the CRC or inflate fails.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(info.compress_size, 16)):
        data[i] ^= 0xFF
    broken = tmp_path / "garbled.wacz"
    broken.write_bytes(bytes(data))
    code, lines = verify(broken, "--key", log_key.verifier.vkey, "--wacz-key",
                         archived.wacz_key_file)
    assert code == 1
    [failed] = failures(lines)
    assert failed.startswith("FAIL sha256 of pages/pages.jsonl: cannot be read: "), lines


def test_the_scan_for_a_warc_is_bounded_and_says_how_far_it_looked(archived, log_key, tmp_path):
    log = write_log(tmp_path / "log", log_key,
                    [archived.entry.encode()] + fillers(MAX_SCAN_ENTRIES))
    vkey = log_key.verifier.vkey
    code, lines = verify(archived.warc, "--log", log, "--key", vkey, "--no-state")
    assert code == 1
    assert failures(lines) == [
        f"FAIL inclusion: no capture entry holds this WARC among the {MAX_SCAN_ENTRIES} entries "
        f"scanned of the log's {MAX_SCAN_ENTRIES + 1}; give the index the reader page prints "
        "with --entry N"]
    code, lines = verify(archived.warc, "--log", log, "--key", vkey, "--no-state", "--entry", "0")
    assert code == 0, lines
