"""merkle.CachedSubtrees: proofs over one tree with its subtree hashes kept give the same bytes."""

from __future__ import annotations

from provenance import merkle


def test_cached_subtrees_give_the_same_proofs_and_roots_and_forget_past_their_limit():
    leaves = [f"entry {i}".encode() for i in range(70_000 // 64)]  # several tiles, a ragged edge
    stored = merkle.MemoryHashes(leaves)
    size = len(leaves)
    cached = merkle.CachedSubtrees(stored, limit=50)
    root = merkle.tree_hash(stored, size)
    assert merkle.tree_hash(cached, size) == root
    for index in (0, 1, 255, 256, 511, 700, size - 2, size - 1):
        proof = merkle.inclusion_proof(cached, size, index)
        assert proof == merkle.inclusion_proof(stored, size, index)
        merkle.verify_inclusion(merkle.leaf_hash(leaves[index]), index, size, proof, root)
        assert len(cached.subtrees) <= 50
    assert cached.subtrees  # it did keep some
