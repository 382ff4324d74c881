"""provenance.merkle against published vectors, plus every way a proof can be malformed.

Vectors: tests/provenance/vectors/rfc6962_roots.json (transparency-dev/merkle testonly/constants.go)
and merkle_probes.json (transparency-dev/merkle testdata/inclusion and testdata/consistency, 196
probes, each with the file it came from); both name the exact commit in ``_source``.
"""

from __future__ import annotations

import base64
import itertools

import pytest

from provenance import merkle
from provenance.errors import ProofError
from tests.provenance.conftest import load_vectors

PROBES = load_vectors("merkle_probes.json")

# The one published probe this module deliberately refuses: its "roots" are 12 bytes long
# ("don't care 2"), and a root that is not a 32-byte SHA-256 hash is malformed here even when
# the two sides agree. Every other probe must give the published answer.
STRICTER_THAN_REFERENCE = {"testdata/consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"}


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _tree(rfc6962: dict, size: int) -> merkle.MemoryHashes:
    return merkle.MemoryHashes([bytes.fromhex(x) for x in rfc6962["leaves"][:size]])


def test_leaf_and_node_hashes_match_the_rfc6962_reference(rfc6962):
    leaves = [merkle.leaf_hash(bytes.fromhex(x)) for x in rfc6962["leaves"]]
    assert [h.hex() for h in leaves] == rfc6962["node_hashes"][0]
    level = leaves
    for want in rfc6962["node_hashes"][1:]:
        level = [merkle.node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        assert [h.hex() for h in level] == want


def test_tree_heads_of_every_size_match_the_rfc6962_reference(rfc6962):
    stored = _tree(rfc6962, 8)
    for size, want in enumerate(rfc6962["roots_by_size"]):
        assert merkle.tree_hash(stored, size).hex() == want


@pytest.mark.parametrize("probe", PROBES["inclusion"], ids=lambda p: p["file"])
def test_inclusion_probe_gives_the_published_answer(probe):
    args = (_b64(probe["leafHash"]), probe["leafIdx"], probe["treeSize"],
            [_b64(p) for p in probe["proof"] or []], _b64(probe["root"]))
    if probe["wantErr"]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("probe", PROBES["consistency"], ids=lambda p: p["file"])
def test_consistency_probe_gives_the_published_answer(probe):
    args = (probe["size1"], probe["size2"], _b64(probe["root1"]), _b64(probe["root2"]),
            [_b64(p) for p in probe["proof"] or []])
    if probe["wantErr"] or probe["file"] in STRICTER_THAN_REFERENCE:
        with pytest.raises(ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def test_generated_proofs_equal_the_published_happy_paths(rfc6962):
    """Our generator, not just our verifier, agrees with the reference's proofs."""
    stored = _tree(rfc6962, 8)
    happy = [p for p in PROBES["inclusion"] if not p["wantErr"] and p["proof"]]
    assert happy
    for probe in happy:
        proof = merkle.inclusion_proof(stored, probe["treeSize"], probe["leafIdx"])
        assert proof == [_b64(p) for p in probe["proof"]], probe["file"]
    happy = [p for p in PROBES["consistency"] if not p["wantErr"] and p["proof"]]
    assert happy
    for probe in happy:
        proof = merkle.consistency_proof(stored, probe["size1"], probe["size2"])
        assert proof == [_b64(p) for p in probe["proof"]], probe["file"]


def test_every_proof_in_trees_up_to_70_leaves_verifies():
    stored = merkle.MemoryHashes([i.to_bytes(4, "big") for i in range(70)])
    roots = [merkle.tree_hash(stored, n) for n in range(71)]
    for size in range(1, 71):
        for index in range(size):
            proof = merkle.inclusion_proof(stored, size, index)
            merkle.verify_inclusion(stored.levels[0][index], index, size, proof, roots[size])
        for old in range(1, size + 1):
            proof = merkle.consistency_proof(stored, old, size)
            merkle.verify_consistency(old, size, roots[old], roots[size], proof)


def test_proofs_across_tile_levels_verify():
    """Past 256 leaves, hashes come from level-1 tiles: proofs still verify."""
    stored = merkle.MemoryHashes([i.to_bytes(4, "big") for i in range(256 * 3 + 5)])
    for size, index, old in [(256, 255, 1), (257, 256, 256), (600, 300, 513), (773, 772, 512)]:
        root = merkle.tree_hash(stored, size)
        proof = merkle.inclusion_proof(stored, size, index)
        merkle.verify_inclusion(stored.levels[0][index], index, size, proof, root)
        proof = merkle.consistency_proof(stored, old, size)
        merkle.verify_consistency(old, size, merkle.tree_hash(stored, old), root, proof)


@pytest.fixture(scope="module")
def seven():
    """A tree of 7 leaves with a valid inclusion proof of leaf 2 and consistency proof 3 → 7."""
    stored = merkle.MemoryHashes([bytes([i]) for i in range(7)])
    return {
        "stored": stored, "leaf": stored.levels[0][2], "root": merkle.tree_hash(stored, 7),
        "old_root": merkle.tree_hash(stored, 3),
        "inclusion": merkle.inclusion_proof(stored, 7, 2),
        "consistency": merkle.consistency_proof(stored, 3, 7),
    }


@pytest.mark.parametrize("change, reason", [
    (dict(size=0), "holds no leaves"),
    (dict(index=7), "not below tree size"),
    (dict(index=-1), "not below tree size"),
    (dict(proof="short"), "needs"),
    (dict(proof="long"), "needs"),
    (dict(proof="31-byte"), "32-byte hash"),
    (dict(leaf=b""), "32-byte hash"),
    (dict(root=b"x" * 33), "32-byte hash"),
    (dict(leaf=b"\x00" * 32), "does not lead to the root"),
    (dict(index=3), "does not lead to the root"),
    (dict(size=2), "not below tree size"),
    (dict(size=4), "needs"),
])
def test_malformed_inclusion_proofs_are_refused_with_a_reason(seven, change, reason):
    proof = list(seven["inclusion"])
    proof = {"short": proof[:-1], "long": proof + proof[:1], "31-byte": [proof[0][:31]] + proof[1:]}.get(
        change.get("proof"), proof)
    with pytest.raises(ProofError, match=reason):
        merkle.verify_inclusion(change.get("leaf", seven["leaf"]), change.get("index", 2),
                                change.get("size", 7), proof, change.get("root", seven["root"]))


@pytest.mark.parametrize("old, new, proof, reason", [
    (7, 3, "valid", "rolled back"),
    (0, 7, "valid", "empty tree"),
    (3, 7, "short", "needs"),
    (3, 7, "long", "needs"),
    (3, 7, "flipped", "old root"),
    (3, 7, "bad-length", "32-byte hash"),
    (3, 3, "valid", "equal size"),
    (4, 7, "valid", "needs"),
])
def test_malformed_consistency_proofs_are_refused_with_a_reason(seven, old, new, proof, reason):
    valid = list(seven["consistency"])
    proof = {"valid": valid, "short": valid[:-1], "long": valid + valid[:1],
             "flipped": [bytes([valid[0][0] ^ 1]) + valid[0][1:]] + valid[1:],
             "bad-length": valid[:1] + [b"\x00" * 16] + valid[2:]}[proof]
    with pytest.raises(ProofError, match=reason):
        merkle.verify_consistency(old, new, seven["old_root"], seven["root"], proof)


def test_a_forked_log_is_named_as_such(seven):
    with pytest.raises(ProofError, match="forked"):
        merkle.verify_consistency(7, 7, seven["old_root"], seven["root"], [])


def test_proof_lengths_agree_with_the_generator():
    stored = merkle.MemoryHashes([bytes([i % 256]) for i in range(40)])
    for size, old in itertools.product(range(2, 41), repeat=2):
        if old < size:
            assert len(merkle.consistency_proof(stored, old, size)) == merkle._consistency_length(old, size)


def test_a_consistency_proof_to_another_new_root_is_refused(seven):
    other = merkle.tree_hash(seven["stored"], 6)
    with pytest.raises(ProofError, match="new root"):
        merkle.verify_consistency(3, 7, seven["old_root"], other, seven["consistency"])
