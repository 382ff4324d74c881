"""provenance.tiles: the tlog-tiles paths, round trips at the sizes where tiles fill, bad tiles.

Path examples: C2SP/C2SP tlog-tiles.md (commit 5ba5ee830903e91240fc6f9f3a7a9293d49e69c9: index
1234067 → x001/x234/067; a tree of 70,000 → 273 full level-0 tiles, partial widths 112, 17, 1) and
golang/mod sumdb/tlog/tlog_test.go (commit fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db: index
123456078 → x123/x456/078, 3057500 → x003/x057/500).
"""

from __future__ import annotations

import os

import pytest

from provenance import merkle, tiles
from provenance.errors import TileError


@pytest.mark.parametrize("index, encoded", [
    (0, "000"), (5, "005"), (999, "999"), (1000, "x001/000"),
    (1234067, "x001/x234/067"), (123456078, "x123/x456/078"), (3057500, "x003/x057/500"),
])
def test_tile_index_path_encoding_matches_the_published_examples(index, encoded):
    assert tiles.encode_index(index) == encoded
    assert tiles.tile_path(0, index) == f"tile/0/{encoded}"
    assert tiles.parse_tile_path(f"tile/3/{encoded}.p/2") == tiles.TileName(3, index, 2)
    assert tiles.bundle_path(index, 7) == f"tile/entries/{encoded}.p/7"


def test_a_tree_of_70000_has_the_tiles_the_spec_lists():
    size = 70_000
    assert tiles.stored_count(size, 0) // 256 == 273
    assert [tiles.tile_width(size, level, tiles.stored_count(size, level) // 256)
            for level in range(3)] == [112, 17, 1]
    assert tiles.tile_width(size, 1, 0) == 256


@pytest.mark.parametrize("path", [
    "tile/0/1", "tile/0/0001", "tile/01/000", "tile/64/000", "tile/0/x000/001", "tile/0/001.p/256",
    "tile/0/001.p/0", "tile/0/001.p/07", "tile/0/../../etc/passwd", "/tile/0/000", "tile/0/x001",
    "tile/data/000", "tile/0/000.p/", "tile/entries/000/", "",
])
def test_non_canonical_tile_paths_are_refused(path):
    with pytest.raises(TileError):
        tiles.parse_tile_path(path)


def _entries(n: int) -> list[bytes]:
    return [f"entry {i}".encode() * (1 + i % 3) for i in range(n)]


@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 65536 + 3])
def test_written_tiles_read_back_to_the_same_tree(tmp_path, size):
    entries = _entries(size)
    writer = tiles.TileWriter(tmp_path)
    assert writer.append(entries) == size
    writer.flush()
    reference = merkle.MemoryHashes(entries)
    root = merkle.tree_hash(reference, size)
    assert merkle.tree_hash(writer, size) == root
    reader = tiles.TileReader(tiles.DirectoryFetcher(tmp_path), size)
    assert merkle.tree_hash(reader, size) == root
    for index in {0, size // 2, size - 1} if size else set():
        assert reader.entry(index) == entries[index]
        proof = merkle.inclusion_proof(reader, size, index)
        merkle.verify_inclusion(merkle.leaf_hash(entries[index]), index, size, proof, root)
    # Resuming from the directory continues the same tree.
    resumed = tiles.TileWriter(tmp_path, size)
    resumed.append([b"one more"])
    assert merkle.tree_hash(resumed, size + 1) == merkle.tree_hash(merkle.MemoryHashes(entries + [b"one more"]), size + 1)


def test_partial_tiles_exist_only_for_flushed_sizes(tmp_path):
    writer = tiles.TileWriter(tmp_path)
    writer.append(_entries(300))
    writer.flush()
    names = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert names == ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1", "tile/entries/000",
                     "tile/entries/001.p/44"]


@pytest.fixture
def log_dir(tmp_path):
    writer = tiles.TileWriter(tmp_path)
    writer.append(_entries(300))
    writer.flush()
    return tmp_path


@pytest.mark.parametrize("damage, reason", [
    (lambda p: p.write_bytes(p.read_bytes()[:-1]), "tile of 8191 bytes"),
    (lambda p: p.write_bytes(p.read_bytes() + b"\0"), "larger than 8192 bytes"),
    (lambda p: p.write_bytes(b""), "tile of 0 bytes"),
    (lambda p: p.unlink(), "missing"),
])
def test_a_tile_of_the_wrong_size_is_refused(log_dir, damage, reason):
    damage(log_dir / "tile/0/000")
    reader = tiles.TileReader(tiles.DirectoryFetcher(log_dir), 300)
    with pytest.raises(TileError, match=reason):
        reader.read_hashes(0, 0, 1)


def test_an_oversized_tile_is_refused_without_reading_it_whole(log_dir):
    """A 64 MiB file where an 8 KiB tile belongs: refused after reading 8 KiB + 1 byte."""
    huge = log_dir / "tile/0/000"
    with open(huge, "wb") as f:
        f.truncate(64 << 20)
    reads = []

    class CountingFetcher(tiles.DirectoryFetcher):
        def fetch(self, path, max_bytes):
            reads.append(max_bytes)
            return super().fetch(path, max_bytes)

    with pytest.raises(TileError, match="larger than"):
        tiles.TileReader(CountingFetcher(log_dir), 300).read_hashes(0, 0, 1)
    assert reads == [8192]


@pytest.mark.parametrize("data, width, reason", [
    (b"\x00", 1, "inside a length prefix"),
    (b"\x00\x05abc", 1, "inside entry 0"),
    (b"\x00\x01a\x00\x01b", 1, "more than its 1 entries"),
    (b"\x00\x01a", 2, "holds 1 entries, expected 2"),
    (b"", 1, "holds 0 entries"),
])
def test_malformed_entry_bundles_are_refused(data, width, reason):
    with pytest.raises(TileError, match=reason):
        tiles.decode_bundle(data, width)


def test_an_altered_entry_is_refused_against_its_leaf_hash(log_dir):
    bundle = log_dir / "tile/entries/000"
    data = bytearray(bundle.read_bytes())
    data[3] ^= 1
    bundle.write_bytes(bytes(data))
    with pytest.raises(TileError, match="altered"):
        tiles.TileReader(tiles.DirectoryFetcher(log_dir), 300).entry(0)


def test_an_entry_too_large_for_its_length_prefix_is_refused_and_nothing_appended(tmp_path):
    writer = tiles.TileWriter(tmp_path)
    with pytest.raises(TileError, match="65535"):
        writer.append([b"fine", b"x" * 65536])
    assert writer.size == 0


def test_a_full_tile_is_never_rewritten_with_other_bytes(log_dir):
    with pytest.raises(TileError, match="rewritten"):
        tiles.write_file(log_dir, "tile/0/000", b"\0" * 8192)


def test_reads_outside_the_log_directory_are_refused(log_dir):
    (log_dir.parent / "secret").write_bytes(b"s")
    os.symlink(log_dir.parent / "secret", log_dir / "tile/entries/009")
    with pytest.raises(TileError, match="outside"):
        tiles.DirectoryFetcher(log_dir).fetch("tile/entries/009", 10)
    with pytest.raises(TileError):
        tiles.DirectoryFetcher(log_dir).fetch("../secret", 10)
