"""provenance.log: a writer over a directory, and a client verifying it over HTTP or from disk.

The HTTP tests serve the log directory with a plain static file server on loopback, as any web
host, S3 bucket or IPFS gateway would; the client trusts only the log's public key.
"""

from __future__ import annotations

import shutil

import pytest

from provenance import cosignature, merkle, note, tiles
from provenance.errors import NoteError, ProofError, ProvenanceError, TileError
from provenance.log import LogClient, LogWriter

ORIGIN = "samizdat.example/log"


@pytest.fixture(scope="module")
def key():
    return note.Ed25519Signer.generate(ORIGIN)


def _entries(start, count):
    return [f'{{"capture": {i}, "sha256": "{i:064x}"}}'.encode() for i in range(start, start + count)]


def _write(directory, key, *batches):
    """Append each batch and publish after it; return the checkpoints."""
    checkpoints = []
    with LogWriter(directory, key) as writer:
        for batch in batches:
            writer.append(batch)
            writer.publish()
            checkpoints.append(writer.checkpoint)
    return checkpoints


def test_a_log_served_over_http_proves_inclusion_and_consistency(static_server, key):
    old, new = _write(static_server.directory, key, _entries(0, 300), _entries(300, 70))
    client = LogClient(static_server.url, ORIGIN, key.verifier)
    inclusion = client.verify(299, expected=_entries(299, 1)[0], seen=old)
    assert inclusion.checkpoint == new
    assert len(inclusion.proof) == 8  # 7 levels below where 299 and 369 part, 1 on the right border
    assert client.prove_consistency(old, new)


@pytest.fixture
def published(tmp_path, key):
    directory = tmp_path / "log"
    old, new = _write(directory, key, _entries(0, 300), _entries(300, 70))
    return directory, old, new


def test_an_entry_altered_after_the_fact_is_refused(published, key):
    directory, _, _ = published
    bundle = directory / "tile/entries/000"
    bundle.write_bytes(bundle.read_bytes().replace(b'"capture": 7,', b'"capture": 8,'))
    client = LogClient(str(directory), ORIGIN, key.verifier)
    with pytest.raises(TileError, match="altered"):
        client.verify(7)


def test_an_entry_removed_from_its_bundle_is_refused(published, key):
    directory, _, _ = published
    bundle = directory / "tile/entries/001.p/114"
    data = bundle.read_bytes()
    bundle.write_bytes(data[: data.rfind(b"\x00")])  # drop the last entry (and a byte more)
    with pytest.raises(TileError, match="truncated|expected 114"):
        LogClient(str(directory), ORIGIN, key.verifier).verify(369)


def test_history_rewritten_consistently_in_tiles_and_bundles_cannot_reach_the_signed_root(published, key):
    """Planting an entry with its matching leaf hash still fails: the signed root does not move."""
    directory, _, _ = published
    bundle = directory / "tile/entries/000"
    entries = tiles.decode_bundle(bundle.read_bytes(), 256)
    entries[0] = b"planted"
    bundle.write_bytes(tiles.encode_bundle(entries))
    tile = directory / "tile/0/000"
    tile.write_bytes(merkle.leaf_hash(b"planted") + tile.read_bytes()[32:])
    client = LogClient(str(directory), ORIGIN, key.verifier)
    assert client.prove_inclusion(client.checkpoint(), 300).entry == _entries(300, 1)[0]
    with pytest.raises(ProofError, match="does not lead to the root"):
        client.prove_inclusion(client.checkpoint(), 0)


def test_a_forked_log_is_refused_against_the_checkpoint_seen_before(tmp_path, key):
    common = _entries(0, 100)
    (seen,) = _write(tmp_path / "a", key, common + _entries(100, 5))
    _write(tmp_path / "b", key, common + [b"a different history"] * 5, _entries(500, 10))
    client = LogClient(str(tmp_path / "b"), ORIGIN, key.verifier)
    with pytest.raises(ProofError, match="old root"):
        client.verify(0, seen=seen)
    # The same size with another root is named for what it is.
    (same_size,) = _write(tmp_path / "c", key, common + [b"a different history"] * 5)
    with pytest.raises(ProofError, match="forked"):
        LogClient(str(tmp_path / "c"), ORIGIN, key.verifier).verify(0, seen=seen)


def test_a_rolled_back_checkpoint_is_refused(published, key, tmp_path):
    directory, old, new = published
    rolled = tmp_path / "rolled"
    _write(rolled, key, _entries(0, 300))
    with pytest.raises(ProofError, match="rolled back"):
        LogClient(str(rolled), ORIGIN, key.verifier).verify(0, seen=new)


def test_a_checkpoint_signed_by_another_key_is_refused(published):
    directory, _, _ = published
    stranger = note.Ed25519Signer.generate(ORIGIN)
    with pytest.raises(NoteError, match="no signature by a trusted key"):
        LogClient(str(directory), ORIGIN, stranger.verifier).checkpoint()


def test_a_missing_checkpoint_is_refused(tmp_path, key):
    with pytest.raises(NoteError, match="no checkpoint"):
        LogClient(str(tmp_path), ORIGIN, key.verifier).checkpoint()


def test_a_witness_policy_is_enforced_by_the_client(published, key):
    directory, _, new = published
    witness = cosignature.CosignatureSigner.generate("witness.example/w1")
    policy = cosignature.WitnessPolicy((witness.verifier,), 1)
    client = LogClient(str(directory), ORIGIN, key.verifier, policy)
    with pytest.raises(ProvenanceError, match="0 of the 1 cosignatures"):
        client.checkpoint()
    checkpoint_file = directory / "checkpoint"
    checkpoint_file.write_bytes(cosignature.add_cosignatures(
        checkpoint_file.read_bytes(), [witness.cosign(new.text())]))
    assert client.checkpoint() == new


def test_a_second_writer_is_refused(tmp_path, key):
    with LogWriter(tmp_path, key):
        with pytest.raises(ProvenanceError, match="another writer"):
            LogWriter(tmp_path, key)


def test_the_writer_resumes_and_refuses_tiles_that_disagree_with_its_checkpoint(published, key):
    directory, _, new = published
    with LogWriter(directory, key) as writer:
        assert writer.checkpoint == new
        writer.append([b"later"])
        writer.publish()
    for path, reason in [("tile/1/000.p/1", "do not match its signed checkpoint"),
                         ("tile/0/001.p/115", "altered")]:
        partial = directory / path
        data = bytearray(partial.read_bytes())
        data[0] ^= 1
        partial.write_bytes(bytes(data))
        with pytest.raises(ProvenanceError, match=reason):
            LogWriter(directory, key)


def test_an_unpublished_entry_is_not_provable(published, key):
    directory, _, new = published
    writer = LogWriter(directory, key)
    writer.append([b"not yet public"])
    client = LogClient(str(directory), ORIGIN, key.verifier)
    assert client.checkpoint() == new
    with pytest.raises(TileError, match="not below tree size"):
        client.prove_inclusion(new, new.size)
    writer.close()


def test_an_empty_log_is_consistent_with_everything_after_it(tmp_path, key):
    empty, full = _write(tmp_path, key, [], _entries(0, 3))
    assert empty.size == 0 and empty.root_hash == merkle.EMPTY_ROOT
    LogClient(str(tmp_path), ORIGIN, key.verifier).verify(2, seen=empty)


def test_the_log_directory_copies_anywhere(published, key, tmp_path):
    """Mirrors are plain copies: a copy verifies exactly like the original."""
    directory, old, _ = published
    mirror = tmp_path / "mirror"
    shutil.copytree(directory, mirror)
    LogClient(str(mirror), ORIGIN, key.verifier).verify(123, seen=old)
