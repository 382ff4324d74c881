"""The pack verifier follows the log-key rotations an index carries (provenance/verify_pack.py
``follow_rotations``, the rule embed.js applies), on a real Merkle tree of real key entries."""

from __future__ import annotations

from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from embed.logged import log_rotations
from provenance import merkle
from provenance.entries import KeySignatures, key_signing_message
from provenance.keys import RoleSigner, rotation
from provenance.note import Checkpoint, Ed25519Verifier
from provenance.verify_pack import PackError, follow_rotations

NAME = "samizdat.test/log"


def key() -> RoleSigner:
    return RoleSigner("log", Ed25519PrivateKey.generate(), NAME)


def verifier(signer: RoleSigner) -> Ed25519Verifier:
    return Ed25519Verifier.from_vkey(signer.public.text)


def log_of(entries: list[bytes]) -> tuple[Checkpoint, str, merkle.MemoryHashes]:
    """A tree of ``entries`` and its checkpoint note (the signature lines do not matter here:
    which key must sign it is what follow_rotations decides)."""
    stored = merkle.MemoryHashes(entries)
    checkpoint = Checkpoint(NAME, len(entries), merkle.tree_hash(stored, len(entries)))
    return checkpoint, checkpoint.text() + "\n\u2014 " + NAME + " AAAAAAAA\n", stored


@pytest.fixture
def chain():
    a, b, c = key(), key(), key()
    entries = [b"{}", rotation(a, b).encode(), b"{}", rotation(b, c).encode(), b"{}"]
    checkpoint, note, stored = log_of(entries)
    index = {"checkpoint": note, "log_rotations": log_rotations(
        [(1, entries[1]), (3, entries[3])], checkpoint, stored)}
    return a, b, c, index


def test_a_key_pinned_before_two_rotations_follows_both_and_a_current_one_none(chain):
    a, b, c, index = chain
    got, followed = follow_rotations(index, index["checkpoint"], verifier(a))
    assert got.public_key == verifier(c).public_key and [at for at, _ in followed] == [1, 3]
    got, followed = follow_rotations(index, index["checkpoint"], verifier(b))
    assert got.public_key == verifier(c).public_key and [at for at, _ in followed] == [3]
    got, followed = follow_rotations(index, index["checkpoint"], verifier(c))
    assert got.public_key == verifier(c).public_key and followed == []


def test_a_rotation_not_in_the_log_or_without_the_new_keys_signature_is_refused(chain):
    a, b, c, index = chain
    real = index["log_rotations"][0]
    thief = key()
    forged = rotation(a, thief)  # the old key stolen: signed by both, but not in the log
    message = key_signing_message(forged)
    old_only = replace(forged, signatures=KeySignatures(old=a.sign(message), new=a.sign(message)))
    genuine = rotation(a, b)
    other = replace(genuine, signatures=KeySignatures(
        old=genuine.signatures.old, new=thief.sign(key_signing_message(genuine))))
    for entry, reason in ((forged, "not included in the checkpoint"),
                          (old_only, "the new key's signature does not verify"),
                          (other, "the new key's signature does not verify")):
        bad = {**index, "log_rotations": [{**real, "entry": entry.encode().decode()}]}
        with pytest.raises(PackError, match=f"log key rotation at entry 1: .*{reason}"):
            follow_rotations(bad, index["checkpoint"], verifier(a))
    twice = {**index, "log_rotations": [real, {**real, "index": 2, "entry": forged.encode().decode()}]}
    with pytest.raises(PackError, match="which already rotated to another"):
        follow_rotations(twice, index["checkpoint"], verifier(a))
