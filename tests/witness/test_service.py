"""The witness's protocol core against real logs in directories: every answer of tlog-witness."""

from __future__ import annotations

import multiprocessing

import pytest

from provenance import merkle
from provenance.cosignature import CosignatureSigner, CosignatureVerifier
from provenance.log import LogWriter
from provenance.note import Ed25519Signer, b64encode, open_note, parse_note, sign_note
from provenance.tiles import DirectoryFetcher, TileReader
from witness.logs import WitnessConfigError, WitnessedLogs, add_log, parse_line, revoke_log_key
from witness.service import MAX_BODY_BYTES, SIZE_CONTENT_TYPE, Witness
from witness.state import WitnessState

ORIGIN = "log.example/log"


def body(old: int, proof, note: bytes) -> bytes:
    """An add-checkpoint request body."""
    return (f"old {old}\n" + "".join(b64encode(h) + "\n" for h in proof) + "\n").encode() + note


def proof_for(writer: LogWriter, old: int) -> list[bytes]:
    """The consistency proof from ``old`` to the writer's size, read from its tiles."""
    if old == 0 or old == writer.size:
        return []
    reader = TileReader(DirectoryFetcher(writer.directory), writer.size)
    return merkle.consistency_proof(reader, old, writer.size)


@pytest.fixture
def log_signer() -> Ed25519Signer:
    return Ed25519Signer.generate(ORIGIN)


@pytest.fixture
def log(tmp_path, log_signer):
    with LogWriter(tmp_path / "log", log_signer) as writer:
        yield writer


@pytest.fixture
def cosigner() -> CosignatureSigner:
    return CosignatureSigner.generate("witness.example/witness")


@pytest.fixture
def witness(tmp_path, log_signer, cosigner) -> Witness:
    logs = tmp_path / "witnessed-logs"
    assert add_log(logs, ORIGIN, log_signer.verifier.vkey)
    return Witness(cosigner, WitnessedLogs(logs), WitnessState(tmp_path / "witness"))


def grow(writer: LogWriter, count: int) -> bytes:
    start = writer.size
    writer.append(f"entry {start + i}".encode() for i in range(count))
    return writer.publish()


def cosigned_by(note: bytes, reply_body: bytes, cosigner: CosignatureSigner) -> bool:
    verifier = CosignatureVerifier.from_vkey(cosigner.verifier.vkey)
    opened = open_note(note + reply_body, [verifier])
    return any(s.key_id == verifier.key_id for s in opened.verified)


def test_a_log_is_cosigned_from_zero_then_as_it_grows(witness, log, cosigner):
    first = grow(log, 3)
    reply = witness.add_checkpoint(body(0, [], first))
    assert reply.status == 200, reply.body
    assert reply.body.startswith("— witness.example/witness ".encode()) and reply.body.endswith(b"\n")
    assert cosigned_by(first, reply.body, cosigner)
    second = grow(log, 300)
    reply = witness.add_checkpoint(body(3, proof_for(log, 3), second))
    assert reply.status == 200, reply.body
    assert cosigned_by(second, reply.body, cosigner)
    assert witness.state.read(ORIGIN).size == 303
    # The same checkpoint again is cosigned again (a log retrying after a lost reply).
    assert witness.add_checkpoint(body(303, [], second)).status == 200


def test_an_old_size_that_is_not_the_last_cosigned_gets_409_with_that_size(witness, log):
    witness.add_checkpoint(body(0, [], grow(log, 5)))
    note = grow(log, 5)
    reply = witness.add_checkpoint(body(0, [], note))
    assert (reply.status, reply.content_type, reply.body) == (409, SIZE_CONTENT_TYPE, b"5\n")
    reply = witness.add_checkpoint(body(7, proof_for(log, 7), note))
    assert (reply.status, reply.body) == (409, b"5\n")
    assert witness.add_checkpoint(body(5, proof_for(log, 5), note)).status == 200


def test_a_fork_is_refused_and_nothing_is_stored(witness, log, log_signer, tmp_path):
    note = grow(log, 4)
    assert witness.add_checkpoint(body(0, [], note)).status == 200
    # The real log key signs another tree of the same size: a second view.
    with LogWriter(tmp_path / "fork", log_signer) as fork:
        fork.append([b"entry 0", b"entry 1", b"other 2", b"other 3"])
        forked = fork.publish()
        reply = witness.add_checkpoint(body(4, [], forked))
        assert reply.status == 409 and b"fork" in reply.body
        fork.append([b"other 4", b"other 5"])
        forked = fork.publish()
        # The fork's own proof from 4 cannot lead from the root the witness saw.
        reply = witness.add_checkpoint(body(4, proof_for(fork, 4), forked))
        assert reply.status == 422, reply.body
    assert witness.state.read(ORIGIN).size == 4
    assert witness.state.read(ORIGIN).root_hash == log.checkpoint.root_hash
    # Both signed fork checkpoints are kept: signed by the log, they prove it equivocated.
    assert [p.read_bytes() for p in witness.state.refused(ORIGIN, "unproven")] == [forked]
    assert len(witness.state.refused(ORIGIN, "fork")) == 1


def test_a_rolled_back_checkpoint_is_refused(witness, log, log_signer, tmp_path):
    older = grow(log, 2)
    witness.add_checkpoint(body(0, [], older))
    newer = grow(log, 6)
    assert witness.add_checkpoint(body(2, proof_for(log, 2), newer)).status == 200
    # The older checkpoint, replayed: its old size can be neither 8 (above its size) nor 2.
    assert witness.add_checkpoint(body(8, [], older)).status == 400
    assert witness.add_checkpoint(body(2, [], older)).status == 409
    assert witness.state.read(ORIGIN).size == 8
    assert witness.state.refused(ORIGIN, "fork") == []  # a stale request proves nothing
    assert witness.state.refused(ORIGIN, "unproven") == []


def test_an_unknown_origin_is_404_and_a_foreign_key_403(witness, tmp_path, log_signer):
    stranger = Ed25519Signer.generate("other.example/log")
    with LogWriter(tmp_path / "other", stranger) as other:
        assert witness.add_checkpoint(body(0, [], other.publish())).status == 404
    impostor = Ed25519Signer.generate(ORIGIN)  # the right name, another key
    with LogWriter(tmp_path / "impostor", impostor) as fake:
        fake.append([b"planted"])
        reply = witness.add_checkpoint(body(0, [], fake.publish()))
        assert reply.status == 403, reply.body
    assert witness.state.read(ORIGIN).size == 0


def test_a_bad_log_signature_is_403(witness, log):
    note = bytearray(grow(log, 1))
    note[-10] ^= 1  # inside the base64 of the log's own signature
    reply = witness.add_checkpoint(body(0, [], bytes(note)))
    assert reply.status in (400, 403)
    note = grow(log, 1)
    text, _, sig = note.partition(b"\n\n")
    tampered = text.replace(b"\n2\n", b"\n3\n") + b"\n\n" + sig
    assert witness.add_checkpoint(body(0, [], tampered)).status == 403


@pytest.mark.parametrize("request_body", [
    b"", b"old 0\n", b"old 0\n\n", b"old 01\n\nx", b"old -1\n\nx", b"new 0\n\nx",
    b"old 0\nnot base64!\n\n", b"old 0\nAAAA\n\n", b"\xff\xfe\n\n",
    b"old 0\n\nlog.example/log\n1\nnot a hash\n\n\xe2\x80\x94 log.example/log AAAAAAAA\n",
    b"old 0\n\n" + b"\x00" * 100,
    b"old 99999999999999999999\n\n",
])
def test_malformed_bodies_are_400(witness, log, request_body):
    assert witness.add_checkpoint(request_body).status == 400


def test_too_many_proof_lines_or_a_proof_from_zero_are_400(witness, log):
    note = grow(log, 3)
    hashes = [bytes(32)] * 64
    assert witness.add_checkpoint(body(0, hashes, note)).status == 400
    assert witness.add_checkpoint(body(0, [bytes(32)], note)).status == 400
    assert witness.add_checkpoint(body(0, [], note)).status == 200


def test_an_empty_tree_with_another_root_is_400(witness, log_signer):
    from provenance.note import Checkpoint, sign_checkpoint

    bogus = sign_checkpoint(Checkpoint(ORIGIN, 0, bytes(32)), log_signer)
    assert witness.add_checkpoint(body(0, [], bogus)).status == 400
    empty = sign_checkpoint(Checkpoint(ORIGIN, 0, merkle.EMPTY_ROOT), log_signer)
    assert witness.add_checkpoint(body(0, [], empty)).status == 200


def test_an_oversized_body_is_413(witness):
    assert witness.add_checkpoint(b"old 0\n\n" + b"x" * MAX_BODY_BYTES).status == 413


def test_a_malformed_witnessed_logs_file_stops_cosigning(witness, log, tmp_path):
    (tmp_path / "witnessed-logs").write_text("just-one-field\n")
    assert witness.add_checkpoint(body(0, [], grow(log, 1))).status == 503
    with pytest.raises(WitnessConfigError):
        add_log(tmp_path / "x", "origin", "not-a-key")


def _race(args) -> int:
    """One process's request, as a separate gunicorn worker would send it."""
    directory, logs, key_seed, request = args
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    signer = CosignatureSigner("w", Ed25519PrivateKey.from_private_bytes(key_seed))
    witness = Witness(signer, WitnessedLogs(logs), WitnessState(directory))
    return witness.add_checkpoint(request).status


def test_refused_checkpoints_kept_are_bounded(witness, log, log_signer, tmp_path):
    from witness.state import MAX_REFUSED

    witness.add_checkpoint(body(0, [], grow(log, 1)))
    for i in range(MAX_REFUSED + 5):
        with LogWriter(tmp_path / f"fork{i}", log_signer) as fork:
            fork.append([f"other {i}".encode()])
            assert witness.add_checkpoint(body(1, [], fork.publish())).status == 409
    assert len(witness.state.refused(ORIGIN, "fork")) == MAX_REFUSED
    # Bad proofs with a genuine checkpoint fill only their own bucket.
    note = grow(log, 2)
    for i in range(3):
        assert witness.add_checkpoint(body(1, [bytes([i]) * 32], note)).status == 422
    assert len(witness.state.refused(ORIGIN, "unproven")) == 1  # the same checkpoint, once


def test_racing_processes_cannot_roll_the_state_back(witness, log, tmp_path):
    """Requests from size 0 for checkpoints of many sizes at once: one wins, the rest get 409."""
    notes = []
    for _ in range(8):
        notes.append(grow(log, 1))
    seed = bytes(range(32))
    args = [(tmp_path / "witness", tmp_path / "witnessed-logs", seed, body(0, [], n)) for n in notes]
    with multiprocessing.get_context("fork").Pool(4) as pool:
        statuses = pool.map(_race, args)
    assert statuses.count(200) == 1 and statuses.count(409) == 7, statuses
    winner = statuses.index(200) + 1
    assert witness.state.read(ORIGIN).size == winner


def resign(note: bytes, signers) -> bytes:
    """The same checkpoint text, signed by ``signers`` only."""
    return sign_note(parse_note(note).text, signers)


def test_a_revoked_log_key_alone_is_403_from_its_size_on_and_a_new_key_beside_it_is_cosigned(
        witness, log, log_signer, cosigner, tmp_path):
    logs = tmp_path / "witnessed-logs"
    assert witness.add_checkpoint(body(0, [], grow(log, 3))).status == 200
    assert revoke_log_key(logs, ORIGIN, log_signer.verifier.vkey, 6)
    # Below the revocation's size the old key still vouches (what it signed before the theft).
    below = grow(log, 2)
    assert witness.add_checkpoint(body(3, proof_for(log, 3), below)).status == 200
    # At the size and past it, the revoked key alone gets no cosignature, even consistent.
    at = grow(log, 1)
    reply = witness.add_checkpoint(body(5, proof_for(log, 5), at))
    assert reply.status == 403, reply.body
    assert b"signed only by revoked log key(s)" in reply.body and b"from size 6" in reply.body
    assert witness.state.read(ORIGIN).size == 5
    # Signed by the revoked key and a key the witness does not know yet: still refused.
    new = Ed25519Signer.generate(ORIGIN)
    both = resign(at, [log_signer, new])
    assert witness.add_checkpoint(body(5, proof_for(log, 5), both)).status == 403
    # Once the operator adds the new key, the checkpoint both sign is cosigned.
    assert add_log(logs, ORIGIN, new.verifier.vkey)
    reply = witness.add_checkpoint(body(5, proof_for(log, 5), both))
    assert reply.status == 200, reply.body
    assert cosigned_by(both, reply.body, cosigner)
    # And one the new key alone signs, later.
    grown = grow(log, 2)
    later = resign(grown, [new])
    assert witness.add_checkpoint(body(6, proof_for(log, 6), later)).status == 200
    # The thief's own signature on that same checkpoint still cannot stand alone.
    assert witness.add_checkpoint(body(8, [], grown)).status == 403
    assert witness.state.read(ORIGIN).size == 8


def test_revoking_a_log_key_from_size_0_refuses_every_checkpoint_it_alone_signs(
        witness, log, log_signer, tmp_path):
    assert revoke_log_key(tmp_path / "witnessed-logs", ORIGIN, log_signer.verifier.vkey, 0)
    assert witness.add_checkpoint(body(0, [], grow(log, 1))).status == 403
    assert witness.state.read(ORIGIN).size == 0


def test_the_earliest_revocation_counts_and_none_un_revokes(witness, log, log_signer, tmp_path):
    logs = tmp_path / "witnessed-logs"
    vkey = log_signer.verifier.vkey
    assert revoke_log_key(logs, ORIGIN, vkey, 4)
    assert not revoke_log_key(logs, ORIGIN, vkey, 9)  # later: already revoked
    assert not add_log(logs, ORIGIN, vkey)  # listing the key again does not lift it
    with open(logs, "a") as out:
        out.write(f"{ORIGIN} {vkey} revoked-from=2\n")  # an operator's hand edit, earlier
    assert WitnessedLogs(logs).revoked_from(ORIGIN) == {vkey: 2}
    assert witness.add_checkpoint(body(0, [], grow(log, 1))).status == 200
    assert witness.add_checkpoint(body(1, proof_for(log, 1), grow(log, 1))).status == 403


@pytest.mark.parametrize("line", [
    "log.example/log revoked-from=3",
    "log.example/log {vkey} revoked-from=-1",
    "log.example/log {vkey} revoked-from=03",
    "log.example/log {vkey} revoked-from=",
    "log.example/log {vkey} revoked-from=99999999999999999999",
    "log.example/log {vkey} revoked-from=3 extra",
    "{vkey} revoked-from=3",
])
def test_malformed_revocation_lines_are_refused_and_stop_cosigning(
        witness, log, log_signer, tmp_path, line):
    line = line.format(vkey=log_signer.verifier.vkey)
    with pytest.raises(WitnessConfigError):
        parse_line(line)
    with open(tmp_path / "witnessed-logs", "a") as out:
        out.write(line + "\n")
    assert witness.add_checkpoint(body(0, [], grow(log, 1))).status == 503


def test_revoking_a_key_the_file_does_not_list_is_refused_and_writes_nothing(
        witness, log_signer, tmp_path):
    logs = tmp_path / "witnessed-logs"
    before = logs.read_bytes()
    other = Ed25519Signer.generate(ORIGIN)
    with pytest.raises(WitnessConfigError, match="nothing to revoke"):
        revoke_log_key(logs, ORIGIN, other.verifier.vkey, 3)
    with pytest.raises(WitnessConfigError, match="nothing to revoke"):
        revoke_log_key(logs, "other.example/log", log_signer.verifier.vkey, 3)
    with pytest.raises(WitnessConfigError):
        revoke_log_key(logs, ORIGIN, "not-a-key", 3)
    assert logs.read_bytes() == before
