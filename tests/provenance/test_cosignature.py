"""provenance.cosignature: cosignature/v1 and the k-of-n witness policy.

No published cosignature/v1 vector names its public key (C2SP tlog-cosignature.md's example line
has none; transparency-dev/formats tests round-trip random keys), so these tests check the spec's
example line's *structure* by hand (key ID, 8-byte timestamp 1679315147, 64-byte signature, the
signed message it shows) and round-trip everything else, including every refusal.
"""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from provenance import cosignature, note
from provenance.errors import NoteError, PolicyError
from tests.provenance.conftest import load_vectors

SPEC = load_vectors("signed_note.json")["spec"]
ORIGIN = "example.com/log"


def test_the_spec_example_cosignature_has_the_specified_structure():
    parsed = note.parse_note(SPEC["cosigned_checkpoint"].encode())
    witness = parsed.signatures[1]
    assert witness.name == "witness.example.com/w1"
    assert len(witness.signature) == 8 + 64
    stamp = int.from_bytes(witness.signature[:8], "big")
    assert stamp == SPEC["cosignature_timestamp"]
    assert cosignature.cosignature_message(parsed.text, stamp) == SPEC["cosignature_message"].encode()


def test_the_key_id_uses_signature_type_0x04():
    signer = cosignature.CosignatureSigner.generate("witness.example/w1")
    public = signer.verifier.public_key
    want = hashlib.sha256(b"witness.example/w1\n\x04" + public).digest()[:4]
    assert signer.key_id.to_bytes(4, "big") == want
    assert signer.key_id != note.key_id("witness.example/w1", note.ALG_ED25519, public)
    assert base64.b64decode(signer.verifier.vkey.split("+", 2)[2])[0] == 0x04
    assert cosignature.CosignatureVerifier.from_vkey(signer.verifier.vkey).key_id == signer.key_id


@pytest.fixture
def signed():
    log = note.Ed25519Signer.generate(ORIGIN)
    checkpoint = note.Checkpoint(ORIGIN, 10, bytes(32))
    return log, checkpoint, note.sign_checkpoint(checkpoint, log)


def _witnesses(n):
    return [cosignature.CosignatureSigner.generate(f"witness{i}.example/w") for i in range(n)]


def test_one_of_two_witnesses_satisfies_a_one_of_two_policy(signed):
    log, checkpoint, data = signed
    w1, w2 = _witnesses(2)
    data = cosignature.add_cosignatures(data, [w1.cosign(checkpoint.text(), 1700000000)])
    policy = cosignature.WitnessPolicy((w1.verifier, w2.verifier), 1)
    result = policy.verify(data, ORIGIN, log.verifier)
    assert result.checkpoint == checkpoint
    assert result.cosigners == {w1.name: 1700000000}
    with pytest.raises(PolicyError, match="1 of the 2 cosignatures"):
        cosignature.WitnessPolicy((w1.verifier, w2.verifier), 2).verify(data, ORIGIN, log.verifier)


def test_a_checkpoint_without_cosignatures_fails_a_policy_that_needs_one(signed):
    log, _, data = signed
    (w1,) = _witnesses(1)
    with pytest.raises(PolicyError, match="cosigned by: none"):
        cosignature.WitnessPolicy((w1.verifier,), 1).verify(data, ORIGIN, log.verifier)


def test_an_unknown_witness_does_not_count(signed):
    log, checkpoint, data = signed
    w1, stranger = _witnesses(2)
    data = cosignature.add_cosignatures(data, [stranger.cosign(checkpoint.text())])
    with pytest.raises(PolicyError):
        cosignature.WitnessPolicy((w1.verifier,), 1).verify(data, ORIGIN, log.verifier)


def _tamper(sig: note.Signature, how: str) -> note.Signature:
    raw = bytearray(sig.signature)
    if how == "signature":
        raw[-1] ^= 1
    elif how == "timestamp":
        raw[7] ^= 1  # the signed message names the time: changing it breaks the signature
    elif how == "short":
        raw = raw[:-1]
    elif how == "future":
        raw[:8] = (int(time.time()) + 3600).to_bytes(8, "big")
    elif how == "overflow":
        raw[:8] = (1 << 63).to_bytes(8, "big")
    return note.Signature(sig.name, sig.key_id, bytes(raw))


@pytest.mark.parametrize("how, reason", [
    ("signature", "invalid cosignature"),
    ("timestamp", "invalid cosignature"),
    ("short", "72 bytes"),
    ("future", "in the future"),
    ("overflow", "2\\^63"),
])
def test_a_bad_cosignature_rejects_the_checkpoint_with_a_reason(signed, how, reason):
    log, checkpoint, data = signed
    (w1,) = _witnesses(1)
    sig = _tamper(w1.cosign(checkpoint.text()), how)
    data = cosignature.add_cosignatures(data, [sig])
    with pytest.raises(NoteError, match=reason):
        cosignature.WitnessPolicy((w1.verifier,), 1).verify(data, ORIGIN, log.verifier)


def test_a_cosignature_for_another_checkpoint_is_refused(signed):
    log, checkpoint, data = signed
    (w1,) = _witnesses(1)
    other = note.Checkpoint(ORIGIN, 11, bytes(32))
    sig = w1.cosign(other.text())
    with pytest.raises(NoteError, match="invalid cosignature"):
        cosignature.WitnessPolicy((w1.verifier,), 1).verify(
            cosignature.add_cosignatures(data, [sig]), ORIGIN, log.verifier)


def test_a_witness_only_cosigns_checkpoints():
    (w1,) = _witnesses(1)
    with pytest.raises(NoteError):
        w1.cosign("not a checkpoint\n")


@pytest.mark.parametrize("threshold", [-1, 3])
def test_impossible_policies_are_refused(threshold):
    w = [x.verifier for x in _witnesses(2)]
    with pytest.raises(PolicyError, match="impossible"):
        cosignature.WitnessPolicy(tuple(w), threshold)


def test_a_witness_listed_twice_is_refused():
    (w1,) = _witnesses(1)
    with pytest.raises(PolicyError, match="twice"):
        cosignature.WitnessPolicy((w1.verifier, w1.verifier), 1)


def test_an_ed25519_note_key_is_not_a_cosigning_key():
    log = note.Ed25519Signer.generate("witness.example/w1")
    with pytest.raises(NoteError, match="signature type 0x04"):
        cosignature.CosignatureVerifier.from_vkey(log.verifier.vkey)
