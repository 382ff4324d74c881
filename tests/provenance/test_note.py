"""provenance.note against the published signed-note examples, and every malformed note we refuse.

Vectors: tests/provenance/vectors/signed_note.json — C2SP signed-note.md's example (a verifier key
and the note it verifies) and golang/mod sumdb/note/note_test.go's keys, signatures and bad
messages; ``_source`` names the commits.
"""

from __future__ import annotations

import io

import pytest

from provenance import note
from provenance.errors import NoteError
from tests.provenance.conftest import load_vectors

V = load_vectors("signed_note.json")
SPEC, GO = V["spec"], V["go"]


def test_the_spec_example_note_verifies_under_its_verifier_key():
    verifier = note.Ed25519Verifier.from_vkey(SPEC["vkey"])
    assert verifier.vkey == SPEC["vkey"]
    opened = note.open_note(SPEC["note"].encode(), [verifier])
    assert opened.text == SPEC["text"]
    assert [s.name for s in opened.verified] == ["example.com/foo"]


def test_signing_with_the_go_test_key_gives_the_published_signature():
    """Ed25519 is deterministic: the same key and text must give the same bytes as Go's note."""
    signer = note.Ed25519Signer.from_skey(GO["peter_skey"])
    assert signer.verifier.vkey == GO["peter_vkey"]
    assert signer.skey == GO["peter_skey"]
    assert note.sign_note(GO["text"], [signer]) == (GO["text"] + "\n" + GO["peter_sig"]).encode()


def test_unknown_keys_are_ignored_and_known_ones_verified():
    peter = note.Ed25519Verifier.from_vkey(GO["peter_vkey"])
    enoch = note.Ed25519Verifier.from_vkey(GO["enoch_vkey"])
    data = (GO["text"] + "\n" + GO["peter_sig"] + GO["enoch_sig"]).encode()
    one = note.open_note(data, [peter])
    assert [s.name for s in one.verified] == ["PeterNeumann"]
    assert [s.name for s in one.unverified] == ["EnochRoot"]
    both = note.open_note(data, [peter, enoch])
    assert [s.name for s in both.verified] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        note.open_note(data, [])


def test_repeated_identical_signatures_count_once():
    peter = note.Ed25519Verifier.from_vkey(GO["peter_vkey"])
    data = (GO["text"] + "\n" + GO["peter_sig"] * 2 + GO["enoch_sig"] * 2).encode()
    opened = note.open_note(data, [peter])
    assert len(opened.verified) == 1 and len(opened.unverified) == 1


def test_two_different_signatures_by_one_known_key_are_refused():
    signer = note.Ed25519Signer.from_skey(GO["peter_skey"])
    good = signer.sign(GO["text"].encode())
    forged = note.Signature(good.name, good.key_id, bytes(64))
    data = note.sign_note(GO["text"], [], keep=[good, forged])
    with pytest.raises(NoteError, match="two different signatures"):
        note.open_note(data, [signer.verifier])


def test_a_key_configured_twice_is_ambiguous():
    enoch = note.Ed25519Verifier.from_vkey(GO["enoch_vkey"])
    with pytest.raises(NoteError, match="ambiguous key EnochRoot\\+af0cfe78"):
        note.open_note((GO["text"] + "\n" + GO["enoch_sig"]).encode(), [enoch, enoch])


def test_a_bad_signature_by_a_known_key_rejects_the_note():
    peter = note.Ed25519Verifier.from_vkey(GO["peter_vkey"])
    sig = GO["peter_sig"]
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        note.open_note((GO["text"] + "\n" + sig[:60] + "ABCD" + sig[60:]).encode(), [peter])
    with pytest.raises(NoteError, match="invalid signature"):
        note.open_note((GO["text"].replace("problem,", "problem;") + "\n" + sig).encode(), [peter])


@pytest.mark.parametrize("message, reason", [
    (GO["text"], "no blank line"),
    (GO["text"] + "\n", "no signatures"),
    (GO["text"] + "\n" + GO["peter_sig"][:-1], "end with a newline"),
    ("\x01" + GO["text"] + "\n" + GO["peter_sig"], "control characters"),
    (GO["text"].replace("\n", "\r\n", 1) + "\n" + GO["peter_sig"], "control characters"),
    (GO["text"] + "\n" + GO["peter_sig"].replace("PeterNeumann", "Bad Name"), "invalid key name"),
    (GO["text"] + "\n" + GO["peter_sig"].replace("PeterNeumann", "Peter+Neumann"), "invalid key name"),
    (GO["text"] + "\n" + GO["peter_sig"].replace("PeterNeumann", "Peter\u00a0Neumann"), "invalid key name"),
    (GO["text"] + "\n" + GO["peter_sig"] + "Unexpected line.\n", "em dash"),
    (GO["text"] + "\n" + GO["peter_sig"] * 101, "more than 100 signatures"),
    (GO["text"] + "\n" + "— PeterNeumann\n", "no signature after"),
    (GO["text"] + "\n" + "— PeterNeumann AAAA\n", "too short"),
    (GO["text"] + "\n" + "— PeterNeumann x08go/ZJ!!\n", "not valid base64"),
    (GO["text"] + "\n" + "— PeterNeumann AAAAAB==\n", "not canonical base64"),
])
def test_malformed_notes_are_refused_with_a_reason(message, reason):
    peter = note.Ed25519Verifier.from_vkey(GO["peter_vkey"])
    with pytest.raises(NoteError, match=reason):
        note.open_note(message.encode(), [peter])


def test_bad_utf8_is_refused():
    data = b"\xff" + (GO["text"] + "\n" + GO["peter_sig"]).encode()
    with pytest.raises(NoteError, match="UTF-8"):
        note.parse_note(data)


def test_an_oversized_note_is_refused_without_reading_it_whole():
    stream = io.BytesIO(b"a" * (10 * note.MAX_NOTE_BYTES))
    with pytest.raises(NoteError, match="larger than"):
        note.read_bounded(stream)
    assert stream.tell() == note.MAX_NOTE_BYTES + 1
    with pytest.raises(NoteError, match="larger than"):
        note.parse_note(b"a" * (note.MAX_NOTE_BYTES + 1))


def test_the_spec_example_with_a_blank_line_in_its_text_parses():
    """The text ends at the *last* blank line: poems may have stanzas."""
    parsed = note.parse_note(SPEC["unsigned_example"].encode())
    assert parsed.text.endswith("sole:\n\ned è subito sera.\n")
    assert [s.name for s in parsed.signatures] == ["quasimodo.example/salvatore"]


def test_verifier_key_manglings_are_refused():
    """Every proper substring and every one-byte change of a published key is refused (as in Go)."""
    vkey = GO["peter_vkey"]
    bad = {vkey[i:j] for i in range(len(vkey) + 1) for j in range(i + 1, len(vkey) + 1)} - {vkey}
    bad |= {vkey[:i] + chr(ord(vkey[i]) + 1) + vkey[i + 1:] for i in range(len(vkey))}
    bad |= set(GO["bad_vkeys"])
    for candidate in bad:
        with pytest.raises(NoteError):
            note.Ed25519Verifier.from_vkey(candidate)


def test_signer_key_manglings_are_refused():
    skey = GO["peter_skey"]
    for i in range(len(skey)):
        with pytest.raises(NoteError):
            note.Ed25519Signer.from_skey(skey[:i] + chr(ord(skey[i]) + 1) + skey[i + 1:])


@pytest.mark.parametrize("text", ["no newline", "\n", "two blank lines\n\n", "tab\there\n"])
def test_unsignable_texts_are_refused(text):
    with pytest.raises(NoteError):
        note.sign_note(text, [note.Ed25519Signer.generate("example.com/log")])


def test_a_checkpoint_round_trips_and_is_opened_for_its_origin():
    signer = note.Ed25519Signer.generate("example.com/log")
    checkpoint = note.Checkpoint("example.com/log", 20852163, bytes(range(32)), ("ext one",))
    data = note.sign_checkpoint(checkpoint, signer)
    opened, _ = note.open_checkpoint(data, "example.com/log", signer.verifier)
    assert opened == checkpoint
    with pytest.raises(NoteError, match="not the expected"):
        note.open_checkpoint(data, "example.com/other", signer.verifier)
    other = note.Ed25519Signer.generate("example.com/log")
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        note.open_checkpoint(data, "example.com/log", other.verifier)


def test_the_spec_checkpoint_example_parses():
    parsed = note.parse_note(SPEC["cosigned_checkpoint"].encode())
    checkpoint = note.Checkpoint.parse(parsed.text)
    assert (checkpoint.origin, checkpoint.size) == ("example.com/behind-the-sofa", 20852163)
    assert checkpoint.text() == parsed.text


@pytest.mark.parametrize("text, reason", [
    ("origin\n5\n", "an origin, a size and a root hash"),
    ("\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "origin is empty"),
    ("o\n05\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "leading zeros"),
    ("o\n-1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "leading zeros"),
    ("o\n+1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "leading zeros"),
    ("o\n99999999999999999999\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "leading zeros"),
    ("o\n5\nAAAA\n", "has 3 bytes"),
    ("o\n5\nnot base64!\n", "not valid base64"),
    ("o\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n", "not canonical"),
    ("o\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\nx\n", "cannot be empty"),
    ("o\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "newline"),
])
def test_malformed_checkpoints_are_refused(text, reason):
    with pytest.raises(NoteError, match=reason):
        note.Checkpoint.parse(text)
