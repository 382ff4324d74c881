"""RFC 9162 (RFC 6962) Merkle tree hashing: tree heads, inclusion and consistency proofs.

Nothing here holds the tree in memory: every hash is computed from *stored* hashes, which are
exactly what tlog-tiles serves — at tile level L, the hash of each complete subtree of 256**L
leaves (level 0: the leaf hashes). Anything that can read those (a directory of tiles, an HTTP
prefix, a list in memory) implements :class:`StoredHashes`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from provenance.errors import ProofError

HASH_SIZE = 32
TILE_HEIGHT = 8  # a tile spans 2**8 = 256 hashes of the level below (tlog-tiles)
TILE_WIDTH = 1 << TILE_HEIGHT
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) per RFC 9162 section 2.1.1


def leaf_hash(data: bytes) -> bytes:
    """The RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def complete_root(hashes: Sequence[bytes]) -> bytes:
    """Root of a complete subtree given its 2**k bottom hashes (e.g. the 256 hashes of a tile)."""
    level = list(hashes)
    if not level or len(level) & (len(level) - 1):
        raise ValueError(f"a complete subtree needs a power-of-two count of hashes, got {len(level)}")
    while len(level) > 1:
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


class StoredHashes(Protocol):
    """Read access to a tree's stored hashes, in the tlog-tiles sense."""

    def read_hashes(self, level: int, start: int, count: int) -> Sequence[bytes]:
        """Hashes ``start .. start+count-1`` at tile level ``level``, all within one tile."""


class MemoryHashes:
    """Stored hashes kept in lists: a reference for tests and small trees, not for the log."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for data in leaves:
            self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, hashed: bytes) -> None:
        """Add one leaf hash, completing tiles (and their hash one level up) as they fill."""
        self.levels[0].append(hashed)
        level = 0
        while len(self.levels[level]) % TILE_WIDTH == 0:
            tile = self.levels[level][-TILE_WIDTH:]
            if len(self.levels) == level + 1:
                self.levels.append([])
            self.levels[level + 1].append(complete_root(tile))
            level += 1

    @property
    def size(self) -> int:
        """Number of leaves."""
        return len(self.levels[0])

    def read_hashes(self, level: int, start: int, count: int) -> Sequence[bytes]:
        """See :class:`StoredHashes`."""
        stored = self.levels[level] if level < len(self.levels) else []
        if start < 0 or start + count > len(stored):
            raise ProofError(f"hashes {start}..{start + count - 1} at level {level} are not stored")
        return stored[start:start + count]


class CachedSubtrees:
    """Stored hashes that also keep the subtree hashes computed from them (up to ``limit``, then
    forgotten all at once): many proofs over one tree, such as a publish proving every fragment,
    then rehash each subtree once instead of once per proof."""

    def __init__(self, stored: StoredHashes, limit: int = 1 << 18) -> None:
        self.stored, self.limit = stored, limit
        self.subtrees: dict[tuple[int, int], bytes] = {}

    def read_hashes(self, level: int, start: int, count: int) -> Sequence[bytes]:
        """See :class:`StoredHashes`."""
        return self.stored.read_hashes(level, start, count)


def subtree_hash(stored: StoredHashes, height: int, index: int) -> bytes:
    """Hash of the complete subtree of 2**height leaves starting at leaf index * 2**height."""
    if isinstance(stored, CachedSubtrees):
        key = (height, index)
        hashed = stored.subtrees.get(key)
        if hashed is None:
            if len(stored.subtrees) >= stored.limit:
                stored.subtrees.clear()
            hashed = stored.subtrees[key] = subtree_hash(stored.stored, height, index)
        return hashed
    level, below = divmod(height, TILE_HEIGHT)
    # Heights between tile levels are rebuilt from at most 128 hashes of one tile.
    return complete_root(stored.read_hashes(level, index << below, 1 << below))


def _split(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (size ≥ 2): RFC 9162's k."""
    return 1 << ((size - 1).bit_length() - 1)


def _range_hash(stored: StoredHashes, lo: int, hi: int) -> bytes:
    """MTH(D[lo:hi]) for the ranges the RFC's recursions produce (lo aligned to the range)."""
    parts = []
    start = lo
    while start < hi:
        height = (hi - start).bit_length() - 1
        # The recursions only ask for ranges whose start is a multiple of every part's size.
        assert start % (1 << height) == 0, (lo, hi)
        parts.append(subtree_hash(stored, height, start >> height))
        start += 1 << height
    root = parts.pop()
    while parts:
        root = node_hash(parts.pop(), root)
    return root


def tree_hash(stored: StoredHashes, size: int) -> bytes:
    """The tree head (root hash) of the first ``size`` leaves."""
    if size < 0:
        raise ProofError(f"tree size {size} is negative")
    return EMPTY_ROOT if size == 0 else _range_hash(stored, 0, size)


def _path(stored: StoredHashes, index: int, lo: int, hi: int) -> list[bytes]:
    """RFC 9162 PATH(index, D[lo:hi])."""
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if index - lo < k:
        return _path(stored, index, lo, lo + k) + [_range_hash(stored, lo + k, hi)]
    return _path(stored, index, lo + k, hi) + [_range_hash(stored, lo, lo + k)]


def inclusion_proof(stored: StoredHashes, size: int, index: int) -> list[bytes]:
    """The audit path proving leaf ``index`` is in the tree of ``size`` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    return _path(stored, index, 0, size)


def _subproof(stored: StoredHashes, old: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    """RFC 9162 SUBPROOF(old, D[lo:hi], whole)."""
    if old == hi - lo:
        return [] if whole else [_range_hash(stored, lo, hi)]
    k = _split(hi - lo)
    if old <= k:
        return _subproof(stored, old, lo, lo + k, whole) + [_range_hash(stored, lo + k, hi)]
    return _subproof(stored, old - k, lo + k, hi, False) + [_range_hash(stored, lo, lo + k)]


def consistency_proof(stored: StoredHashes, old_size: int, new_size: int) -> list[bytes]:
    """The proof that the tree of ``old_size`` leaves is a prefix of the one of ``new_size``."""
    if not 0 < old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to size {new_size}")
    return _subproof(stored, old_size, 0, new_size, True)


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        length = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{what} must be a {HASH_SIZE}-byte hash, got {length}")


def _inclusion_length(index: int, size: int) -> int:
    """How many hashes an inclusion proof of ``index`` in a tree of ``size`` has."""
    inner = (index ^ (size - 1)).bit_length()  # levels where the path has a sibling subtree
    border = bin(index >> inner).count("1")  # levels along the right border, one hash each
    return inner + border


def _consistency_length(old: int, new: int) -> int:
    """How many hashes a consistency proof from ``old`` to ``new`` (0 < old < new) has."""
    shift = (old & -old).bit_length() - 1  # trailing zeros: the proof starts above them
    seeded = old == 1 << shift  # a power-of-two old tree is its own first node, not sent
    return _inclusion_length(old - 1, new) - shift + (0 if seeded else 1)


def verify_inclusion(hashed_leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> None:
    """Check an inclusion proof (RFC 9162 section 2.1.3.2); raise ProofError saying why not."""
    if size <= 0:
        raise ProofError(f"tree size {size} holds no leaves")
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not below tree size {size}")
    _check_hash("leaf hash", hashed_leaf)
    _check_hash("root hash", root)
    for i, sibling in enumerate(proof):
        _check_hash(f"proof hash {i}", sibling)
    want = _inclusion_length(index, size)
    if len(proof) != want:
        raise ProofError(f"inclusion proof has {len(proof)} hashes, a tree of {size} needs {want}")
    fn, sn, r = index, size - 1, bytes(hashed_leaf)
    for sibling in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the tree is tall")
        if fn & 1 or fn == sn:
            r = node_hash(sibling, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or r != root:
        raise ProofError(f"inclusion proof of leaf {index} does not lead to the root of tree size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Check a consistency proof (RFC 9162 section 2.1.4.2); raise ProofError saying why not."""
    if old_size < 0 or new_size < 0:
        raise ProofError("tree sizes cannot be negative")
    if old_size > new_size:
        raise ProofError(f"old tree size {old_size} is larger than new tree size {new_size}: rolled back")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing; none is accepted")
    _check_hash("old root hash", old_root)
    _check_hash("new root hash", new_root)
    for i, node in enumerate(proof):
        _check_hash(f"proof hash {i}", node)
    if old_size == new_size:
        if proof:
            raise ProofError("trees of equal size need an empty consistency proof")
        if old_root != new_root:
            raise ProofError(f"two different roots for the same tree size {old_size}: a forked log")
        return
    want = _consistency_length(old_size, new_size)
    if len(proof) != want:
        raise ProofError(
            f"consistency proof has {len(proof)} hashes, {old_size} → {new_size} needs {want}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the tree is tall")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(node, fr), node_hash(node, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, node)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the tree is tall")
    if fr != old_root:
        raise ProofError(f"consistency proof does not rebuild the old root of size {old_size}")
    if sr != new_root:
        raise ProofError(f"consistency proof does not lead to the new root of size {new_size}")
