"""A second Samizdat instance, run by gunicorn on another loopback port, witnesses the first's log.

The witness process starts once for the module; each test witnesses a log of its own (a fresh
origin added to the witness's file, in effect without a restart), so tests never share state.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import logging
import re
import shlex
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from pathlib import Path

import pytest
import requests

from provenance import merkle
from provenance.appender import log_signer, witness_checkpoint
from provenance.errors import ProvenanceError
from provenance.freshness import checkpoint_facts
from provenance.tasks import append_and_publish
from provenance.cosignature import CosignatureSigner, CosignatureVerifier, WitnessPolicy
from provenance.log import LogClient, LogWriter
from provenance.note import Ed25519Signer, b64encode, open_note
from provenance.tiles import CHECKPOINT_PATH, DirectoryFetcher, TileReader
from provenance.witnessing import WitnessEndpoint, witness_checkpoint_in
from samizdat.app import create_app
from samizdat.runtime import build_runtime
from samizdat.tasks import TASKS_KEY
from tests.conftest import make_settings
from tests.provenance.capturing import capture_and_download
from tests.services import free_port
from tests.witness.server import WITNESS_NAME, start_witness_server
from witness.logs import add_log
from witness.service import MAX_BODY_BYTES
from witness.state import WitnessState

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def witness_server(tmp_path_factory):
    server = start_witness_server(tmp_path_factory.mktemp("witness-server"))
    yield server
    server.close()


@pytest.fixture
def origin(witness_server) -> str:
    return f"log-{uuid.uuid4().hex[:12]}.test/log"


@pytest.fixture
def log_key(witness_server, origin) -> Ed25519Signer:
    """A log key the witness trusts for ``origin``."""
    signer = Ed25519Signer.generate(origin)
    add_log(witness_server.logs_file, origin, signer.verifier.vkey)
    return signer


@pytest.fixture
def log(tmp_path, log_key):
    with LogWriter(tmp_path / "log", log_key) as writer:
        yield writer


def endpoint(server) -> WitnessEndpoint:
    return WitnessEndpoint.parse(server.vkey, server.url)


def grow(writer: LogWriter, count: int) -> bytes:
    start = writer.size
    writer.append(f"entry {start + i}".encode() for i in range(count))
    return writer.publish()


def post(server, old: int, proof, note: bytes, **kwargs) -> requests.Response:
    data = (f"old {old}\n" + "".join(b64encode(h) + "\n" for h in proof) + "\n").encode() + note
    return requests.post(f"{server.url}/add-checkpoint", data=data, timeout=30, **kwargs)


def proof_for(writer: LogWriter, old: int) -> list[bytes]:
    reader = TileReader(DirectoryFetcher(writer.directory), writer.size)
    return merkle.consistency_proof(reader, old, writer.size)


def cosigned(server, note: bytes, reply: bytes) -> bool:
    verifier = CosignatureVerifier.from_vkey(server.vkey)
    return any(s.key_id == verifier.key_id
               for s in open_note(note + reply, [verifier]).verified)


def verify_folder(folder, log_dir, log_vkey, *extra) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provenance.verify", str(folder), "--log", str(log_dir),
         "--key", log_vkey, *extra], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_the_first_instances_pass_gets_a_cosignature_that_verifies_under_quorum_1(
        witness_server, tmp_path, sqlite_url, site, origin, caplog):
    dead = f"http://127.0.0.1:{free_port()}/witness"  # a second witness, down
    dead_key = CosignatureSigner.generate("down.test/witness").verifier.vkey
    settings = make_settings(tmp_path, sqlite_url, log_origin=origin, witness_quorum=1,
                             witnesses=f"{witness_server.vkey} {witness_server.url},"
                                       f"{dead_key} {dead}")
    add_log(witness_server.logs_file, origin, log_signer(settings).verifier.vkey)
    app = create_app(settings)
    try:
        runtime = app.extensions["samizdat"]
        folder = tmp_path / "download"
        capture_id = capture_and_download(app, app.test_client(), site, folder)
        task = next(t for t in app.extensions[TASKS_KEY] if t.id == "provenance.append-captures")
        assert task.func(runtime) == 1  # the scheduler's pass: append, publish, witness
        page = app.test_client().get(f"/captures/{capture_id}/").get_data(as_text=True)
        command = html.unescape(re.search(r'<pre class="command">([^<]*)</pre>', page).group(1))
    finally:
        app.extensions["samizdat"].dispose()
    log_dir = settings.log_path
    published = (log_dir / CHECKPOINT_PATH).read_bytes()
    assert published.count("— ".encode()) == 2  # the log's signature and one cosignature
    assert f"— {WITNESS_NAME} ".encode() in published
    log_vkey = log_signer(settings).verifier.vkey

    # The reader page's command carries the log's policy (both witnesses, quorum 1); run as
    # printed but for the folder and the log's location.
    args = shlex.split(command)
    assert args[args.index("--key") + 1] == log_vkey
    assert args[-6:] == ["--witness", witness_server.vkey, "--witness", dead_key, "--quorum", "1"]
    result = verify_folder(folder, log_dir, log_vkey, *args[args.index("--key") + 2:])
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"ok  cosigned by {WITNESS_NAME} at " in result.stdout
    assert "--  no valid cosignature from down.test/witness" in result.stdout
    assert "ok  witness policy (1 of 2 witnesses cosigned, 1 needed)" in result.stdout
    # Quorum 2 is not met while the second witness is down.
    result = verify_folder(folder, log_dir, log_vkey, "--witness", witness_server.vkey,
                           "--witness", dead_key, "--quorum", "2")
    assert result.returncode == 1
    assert "FAIL witness policy: checkpoint has 1 of the 2 cosignatures" in result.stdout

    # A second pass asks only the witness that is still down: one warning line, nothing else
    # changes, and the log was never held up by it.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="provenance.witnessing"):
        report = witness_checkpoint(build_runtime(settings))
    assert report.cosigned == [WITNESS_NAME] and set(report.failures) == {"down.test/witness"}
    lines = [r.getMessage() for r in caplog.records if r.name == "provenance.witnessing"]
    assert len(lines) == 1 and lines[0].startswith("witness down.test/witness did not cosign")
    assert (log_dir / CHECKPOINT_PATH).read_bytes() == published

    # A bad cosignature (one bit of its signature flipped) and a missing one are refused.
    lines = published.decode().split("\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(f"— {WITNESS_NAME} "))
    name, _, sig = lines[index].rpartition(" ")
    raw = bytearray(base64.b64decode(sig))
    raw[-1] ^= 1
    lines[index] = f"{name} {b64encode(bytes(raw))}"
    (log_dir / CHECKPOINT_PATH).write_text("\n".join(lines), encoding="utf-8")
    result = verify_folder(folder, log_dir, log_vkey, "--witness", witness_server.vkey,
                           "--quorum", "1")
    assert result.returncode == 1
    assert f"FAIL checkpoint: invalid cosignature by {WITNESS_NAME}" in result.stdout
    del lines[index]
    (log_dir / CHECKPOINT_PATH).write_text("\n".join(lines), encoding="utf-8")
    result = verify_folder(folder, log_dir, log_vkey, "--witness", witness_server.vkey,
                           "--quorum", "1")
    assert result.returncode == 1
    assert f"--  no valid cosignature from {WITNESS_NAME}" in result.stdout
    assert "FAIL witness policy: checkpoint has 0 of the 1 cosignatures" in result.stdout
    # Without a policy the same checkpoint still verifies: the policy is the verifier's choice.
    assert verify_folder(folder, log_dir, log_vkey).returncode == 0


def test_flask_log_append_asks_the_witness_and_says_who_cosigned(
        witness_server, tmp_path, sqlite_url, origin):
    settings = make_settings(tmp_path, sqlite_url, log_origin=origin,
                             witnesses=f"{witness_server.vkey} {witness_server.url}")
    add_log(witness_server.logs_file, origin, log_signer(settings).verifier.vkey)
    app = create_app(settings)
    try:
        result = app.test_cli_runner().invoke(args=["log", "append"])
        assert result.exit_code == 0, result.output
        assert f"cosigned by {WITNESS_NAME}" in result.output
        assert "below the witness quorum" not in result.output
    finally:
        app.extensions["samizdat"].dispose()
    client = LogClient(str(settings.log_path), origin, log_signer(settings).verifier,
                       policy=WitnessPolicy((CosignatureVerifier.from_vkey(witness_server.vkey),), 1))
    assert client.checkpoint().size == 0  # the empty log's first checkpoint, cosigned


def test_the_log_proves_growth_and_learns_the_witnesss_size_from_its_409(
        witness_server, log, log_key):
    ep = endpoint(witness_server)
    grow(log, 3)
    report = witness_checkpoint_in(log.directory, log_key.name, log_key.verifier, [ep], 1)
    assert report.cosigned == [WITNESS_NAME] and report.quorum_met
    grow(log, 300)  # crosses a full tile: the proof comes from the tiles
    report = witness_checkpoint_in(log.directory, log_key.name, log_key.verifier, [ep], 1)
    assert report.cosigned == [WITNESS_NAME], report.failures
    # The log forgot what the witness holds (a restored directory): the 409 tells it.
    for memory in log.directory.glob(".witness-*.json"):
        memory.unlink()
    grow(log, 2)
    report = witness_checkpoint_in(log.directory, log_key.name, log_key.verifier, [ep], 1)
    assert report.cosigned == [WITNESS_NAME], report.failures
    client = LogClient(str(log.directory), log_key.name, log_key.verifier)
    assert client.checkpoint().size == 305
    assert open_note((log.directory / CHECKPOINT_PATH).read_bytes(),
                     [CosignatureVerifier.from_vkey(witness_server.vkey)], ).verified


def test_an_old_size_that_does_not_match_gets_409_with_the_witnesss_size(witness_server, log):
    first = grow(log, 5)
    assert post(witness_server, 0, [], first).status_code == 200
    note = grow(log, 5)
    for old in (0, 3):
        reply = post(witness_server, old, proof_for(log, old) if old else [], note)
        assert reply.status_code == 409
        assert reply.headers["Content-Type"] == "text/x.tlog.size"
        assert reply.text == "5\n"
    reply = post(witness_server, 5, proof_for(log, 5), note)
    assert reply.status_code == 200 and cosigned(witness_server, note, reply.content)


def test_a_forked_checkpoint_signed_by_the_real_key_is_refused_and_not_cosigned(
        witness_server, log, log_key, tmp_path):
    real = grow(log, 4)
    assert post(witness_server, 0, [], real).status_code == 200
    with LogWriter(tmp_path / "fork", log_key) as fork:
        fork.append([b"entry 0", b"entry 1", b"planted 2", b"planted 3"])
        reply = post(witness_server, 4, [], fork.publish())
        assert reply.status_code == 409 and b"fork" in reply.content
        fork.append([b"planted 4", b"planted 5", b"planted 6"])
        forked = fork.publish()
        reply = post(witness_server, 4, proof_for(fork, 4), forked)
        assert reply.status_code == 422, reply.text
        assert "—".encode() not in reply.content
    # The witness kept the log-signed fork checkpoints: proof that the log equivocated.
    state = WitnessState(witness_server.data_dir / "witness")
    assert len(state.refused(log_key.name, "fork")) == 1
    assert [p.read_bytes() for p in state.refused(log_key.name, "unproven")] == [forked]
    # The witness still holds the real log at 4: its next checkpoint is cosigned from there.
    real = grow(log, 3)
    reply = post(witness_server, 4, proof_for(log, 4), real)
    assert reply.status_code == 200 and cosigned(witness_server, real, reply.content)


def test_a_rolled_back_checkpoint_is_refused(witness_server, log):
    older = grow(log, 2)
    assert post(witness_server, 0, [], older).status_code == 200
    newer = grow(log, 6)
    assert post(witness_server, 2, proof_for(log, 2), newer).status_code == 200
    reply = post(witness_server, 8, [], older)
    assert reply.status_code == 400 and "larger than the checkpoint's size" in reply.text
    reply = post(witness_server, 2, [], older)
    assert reply.status_code == 409 and reply.text == "8\n"


def test_a_checkpoint_signed_by_an_unknown_key_is_403_and_an_unknown_log_404(
        witness_server, log_key, origin, tmp_path):
    impostor = Ed25519Signer.generate(origin)  # the log's name, not its key
    with LogWriter(tmp_path / "impostor", impostor) as fake:
        fake.append([b"planted"])
        assert post(witness_server, 0, [], fake.publish()).status_code == 403
    stranger = Ed25519Signer.generate("not-witnessed.test/log")
    with LogWriter(tmp_path / "stranger", stranger) as other:
        assert post(witness_server, 0, [], other.publish()).status_code == 404


def test_malformed_and_oversized_bodies_are_400_and_413_never_500(witness_server, log):
    note = grow(log, 1)
    url = f"{witness_server.url}/add-checkpoint"
    for data in [b"", b"old 0\n", b"old 1 2\n\n" + note, b"old 0\n!!\n\n" + note,
                 b"\xff" * 64, b"old 0\n\n" + note[:-5], b"old 0\n\n" + note.replace(b"\n\n", b"\n")]:
        reply = requests.post(url, data=data, timeout=30)
        assert reply.status_code == 400, (data, reply.status_code, reply.text)
    reply = requests.post(url, data=b"old 0\n\n" + b"x" * MAX_BODY_BYTES, timeout=30)
    assert reply.status_code == 413
    # A form-encoded body is no checkpoint either; a GET is not the protocol.
    reply = requests.post(url, data={"old": "0"}, timeout=30)
    assert reply.status_code == 400
    assert requests.get(url, timeout=30).status_code == 405
    assert "no witness" not in witness_server.log_file.read_text(errors="replace")
    assert "Traceback" not in witness_server.log_file.read_text(errors="replace")


def test_a_checkpoint_published_while_the_witnesses_answered_is_not_overwritten(
        witness_server, log, log_key):
    ep = endpoint(witness_server)
    grow(log, 2)

    def publish_meanwhile():
        # The log publishes a newer checkpoint between the witness's reply and the rewrite.
        grow(log, 1)
        return nullcontext()

    report = witness_checkpoint_in(log.directory, log_key.name, log_key.verifier, [ep], 1,
                                   lock_log=publish_meanwhile)
    assert report.cosigned == [] and not report.quorum_met
    published = (log.directory / CHECKPOINT_PATH).read_bytes()
    assert published == log.publish()  # the newer one, uncosigned, byte for byte as signed
    # The next pass has it cosigned, from the size the witness holds (2).
    report = witness_checkpoint_in(log.directory, log_key.name, log_key.verifier, [ep], 1)
    assert report.cosigned == [WITNESS_NAME], report.failures


def test_while_another_writer_holds_the_log_nothing_is_rewritten_and_the_next_pass_cosigns(
        witness_server, tmp_path, sqlite_url, origin):
    settings = make_settings(tmp_path, sqlite_url, log_origin=origin,
                             witnesses=f"{witness_server.vkey} {witness_server.url}")
    add_log(witness_server.logs_file, origin, log_signer(settings).verifier.vkey)
    app = create_app(settings)
    try:
        runtime = app.extensions["samizdat"]
        task = next(t for t in app.extensions[TASKS_KEY] if t.id == "provenance.append-captures")
        task.func(runtime)  # publishes the empty log's checkpoint and has it cosigned
        checkpoint = settings.log_path / CHECKPOINT_PATH
        (settings.log_path / CHECKPOINT_PATH).write_bytes(
            checkpoint.read_bytes().split(f"— {WITNESS_NAME} ".encode())[0])  # cosignature lost
        # `flask log append` holds the log while the pass's witnessing comes to rewrite it.
        with LogWriter(settings.log_path, log_signer(settings), origin):
            with pytest.raises(ProvenanceError, match="another writer holds the log"):
                witness_checkpoint(runtime)
        assert f"— {WITNESS_NAME} ".encode() not in checkpoint.read_bytes()
        task.func(runtime)
        assert f"— {WITNESS_NAME} ".encode() in checkpoint.read_bytes()
    finally:
        app.extensions["samizdat"].dispose()


def test_concurrent_requests_to_both_workers_cosign_exactly_one(witness_server, log):
    """Eight checkpoints of different sizes, all claiming old size 0, sent at once: gunicorn's
    two workers share the state under its lock, so one is cosigned and the rest learn its size."""
    notes = [grow(log, 1) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda note: post(witness_server, 0, [], note), notes))
    statuses = [r.status_code for r in replies]
    assert statuses.count(200) == 1 and statuses.count(409) == 7, statuses
    size = statuses.index(200) + 1
    assert {r.text for r in replies if r.status_code == 409} == {f"{size}\n"}


def test_a_revoked_log_key_gets_no_cosignature_past_its_revocation_entry_the_new_key_does(
        witness_server, origin, tmp_path):
    """A log key is rotated, then revoked by a log entry (a theft). The witness's operator reads
    the revocation's index with the verifier's own code, lists the new key and revokes the old one
    from that entry on; the running witness then refuses what the thief signs alone, as the
    verifier does, and cosigns what the new key signs."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from provenance.keys import (RoleSigner, checkpoint_refusals, log_entries, read_history,
                                 revocation, rotation)
    from provenance.note import parse_note, sign_note
    from provenance.verify import verify_key_use
    from witness.logs import revoke_log_key

    old_private, new_private = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    old, new = Ed25519Signer(origin, old_private), Ed25519Signer(origin, new_private)
    old_role, new_role = RoleSigner("log", old_private, origin), RoleSigner("log", new_private, origin)
    add_log(witness_server.logs_file, origin, old.verifier.vkey)
    with LogWriter(tmp_path / "log", old) as log:
        assert post(witness_server, 0, [], grow(log, 3)).status_code == 200
        log.append([rotation(old_role, new_role, "2026-12-07T21:00:00Z").encode()])
        both = sign_note(parse_note(log.publish()).text, [old, new])
        assert post(witness_server, 3, proof_for(log, 3), both).status_code == 200
        log.append([revocation("log", old_role.public.key_id, "2026-12-07T22:00:00Z",
                               old=old_role).encode()])
        grow(log, 2)
        reader = TileReader(DirectoryFetcher(log.directory), log.size)
        history = read_history(log_entries(reader), [old_role.public])
        # The verifier's --keys line tells the witness's operator the size to revoke from.
        lines = [c.line() for c in verify_key_use(str(log.directory), old.verifier.vkey)]
        said = [line for line in lines if f"log key {old_role.public.key_id} revoked" in line]
        assert len(said) == 1 and said[0].endswith("by entry 4: witnesses refuse it alone with "
                                                   "--from-size 5)"), lines
        from_size = 5
        # The operator's two steps (flask witness add-log / revoke-log-key write these lines).
        assert add_log(witness_server.logs_file, origin, new.verifier.vkey)
        assert revoke_log_key(witness_server.logs_file, origin, old.verifier.vkey, from_size)
        stolen = log.publish()  # size 7, the old (stolen) key's signature alone
        assert checkpoint_refusals(stolen, history, [old_role.public, new_role.public])
        reply = post(witness_server, 4, proof_for(log, 4), stolen)
        assert reply.status_code == 403 and "signed only by revoked log key(s)" in reply.text
        genuine = sign_note(parse_note(stolen).text, [new])
        assert checkpoint_refusals(genuine, history, [old_role.public, new_role.public]) == []
        reply = post(witness_server, 4, proof_for(log, 4), genuine)
        assert reply.status_code == 200 and cosigned(witness_server, genuine, reply.content)
        state = WitnessState(witness_server.data_dir / "witness").read(origin)
        assert state.size == 7


def test_a_quiet_logs_refresh_pass_gets_a_fresher_cosigned_checkpoint_of_the_same_tree(
        witness_server, tmp_path, sqlite_url, origin):
    settings = make_settings(tmp_path, sqlite_url, log_origin=origin, witness_quorum=1,
                             witnesses=f"{witness_server.vkey} {witness_server.url}")
    add_log(witness_server.logs_file, origin, log_signer(settings).verifier.vkey)
    policy = WitnessPolicy((CosignatureVerifier.from_vkey(witness_server.vkey),), 1)
    verifier = log_signer(settings).verifier
    path = settings.log_path / CHECKPOINT_PATH
    app = create_app(settings)
    try:
        task = next(t for t in app.extensions[TASKS_KEY] if t.id == "provenance.append-captures")
        task.func(app.extensions["samizdat"])  # the first checkpoint, cosigned
        first = path.read_bytes()
        old = policy.verify(first, origin, verifier)
        # Within the refresh interval (6 h by default) a quiet pass changes nothing.
        task.func(app.extensions["samizdat"])
        assert path.read_bytes() == first
    finally:
        app.extensions["samizdat"].dispose()
    signed = checkpoint_facts(old.checkpoint).time
    assert signed is not None and old.cosigners[WITNESS_NAME] >= signed
    # Once the newest is older than the interval, the same (quiet) pass re-signs and the witness
    # cosigns the same tree afresh: same size and root, a newer time line and cosignature.
    time.sleep(2.5)
    runtime = build_runtime(dataclasses.replace(settings, log_refresh_seconds=2.0))
    try:
        assert append_and_publish(runtime) == 0  # nothing appended
    finally:
        runtime.dispose()
    new = policy.verify(path.read_bytes(), origin, verifier)
    assert (new.checkpoint.size, new.checkpoint.root_hash) == (old.checkpoint.size,
                                                                old.checkpoint.root_hash)
    assert checkpoint_facts(new.checkpoint).time > signed
    assert new.cosigners[WITNESS_NAME] > old.cosigners[WITNESS_NAME]
    # The witness holds the same tree: a newer time line is no fork.
    assert WitnessState(witness_server.data_dir / "witness").read(origin).size == old.checkpoint.size
