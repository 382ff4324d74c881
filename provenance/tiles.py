"""The C2SP tlog-tiles layout: tile and entry-bundle paths, writing them, reading them back.

A log is a directory (or any static prefix) holding ``checkpoint``, ``tile/<L>/<N>[.p/<W>]``
(concatenated 32-byte hashes) and ``tile/entries/<N>[.p/<W>]`` (uint16-length-prefixed entries).
Full tiles are immutable; partial ones exist for the sizes a checkpoint was signed at. Beside them,
Samizdat's own addition: ``timestamp/<size>/<k>.tsr``, RFC 3161 tokens over the body text of the
checkpoint of that size (k = 0, 1, … with no gap), immutable too.
"""

from __future__ import annotations

import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from provenance.errors import TileError
from provenance.merkle import HASH_SIZE, TILE_HEIGHT, TILE_WIDTH, complete_root, leaf_hash

MAX_LEVEL = 63
MAX_ENTRY_SIZE = 0xFFFF  # the uint16 length prefix
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE  # 8,192
CHECKPOINT_PATH = "checkpoint"
# Time-stamp tokens per checkpoint: one per configured TSA, so a short list bounds what a verifier
# fetches (and what the settings accept).
MAX_TIMESTAMPS = 8


def encode_index(index: int) -> str:
    """Tile index N as zero-padded 3-digit path elements, all but the last prefixed by ``x``."""
    if index < 0:
        raise TileError(f"tile index {index} is negative")
    parts = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        parts.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(parts))


def _suffix(width: int) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise TileError(f"tile width {width} is not between 1 and {TILE_WIDTH}")
    return "" if width == TILE_WIDTH else f".p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]``: where the hashes of tile ``index`` at ``level`` live."""
    if not 0 <= level <= MAX_LEVEL:
        raise TileError(f"tile level {level} is not between 0 and {MAX_LEVEL}")
    return f"tile/{level}/{encode_index(index)}{_suffix(width)}"


def bundle_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``: where the entries of bundle ``index`` live."""
    return f"tile/entries/{encode_index(index)}{_suffix(width)}"


_PATH = re.compile(r"tile/(0|[1-9][0-9]?|entries)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


@dataclass(frozen=True)
class TileName:
    """A parsed tile path: ``level`` is None for an entry bundle."""

    level: int | None
    index: int
    width: int


def parse_tile_path(path: str) -> TileName:
    """Parse a tile or bundle path, refusing anything the layout does not produce itself."""
    match = _PATH.fullmatch(path)
    if not match:
        raise TileError(f"not a tile path: {path!r}")
    level_text, index_text, width_text = match.groups()
    index = int(index_text.replace("x", "").replace("/", ""))
    width = int(width_text) if width_text else TILE_WIDTH
    level = None if level_text == "entries" else int(level_text)
    name = TileName(level, index, width)
    # One spelling per tile: 'x000/001' or '.p/256' would name a tile twice.
    canonical = bundle_path(index, width) if level is None else tile_path(level, index, width)
    if level is not None and level > MAX_LEVEL or canonical != path:
        raise TileError(f"not a canonical tile path: {path!r}")
    return name


_TIMESTAMP_PATH = re.compile(r"timestamp/(0|[1-9][0-9]{0,18})/([0-9])\.tsr")


def timestamp_path(size: int, k: int) -> str:
    """``timestamp/<size>/<k>.tsr``: the k-th time-stamp token of the checkpoint of ``size``."""
    if not 0 <= size < 1 << 63 or not 0 <= k < MAX_TIMESTAMPS:
        raise TileError(f"no time-stamp path for size {size}, token {k}")
    return f"timestamp/{size}/{k}.tsr"


def parse_timestamp_path(path: str) -> tuple[int, int]:
    """(size, k) of a canonical time-stamp path; TileError for anything else."""
    match = _TIMESTAMP_PATH.fullmatch(path)
    if not match or int(match.group(2)) >= MAX_TIMESTAMPS or int(match.group(1)) >= 1 << 63:
        raise TileError(f"not a time-stamp path: {path!r}")
    return int(match.group(1)), int(match.group(2))


def check_log_path(path: str) -> str:
    """Return ``path`` if it is one the layout produces (checkpoint, tile, bundle, time-stamp)."""
    if path == CHECKPOINT_PATH:
        return path
    if path.startswith("timestamp/"):
        parse_timestamp_path(path)
    else:
        parse_tile_path(path)  # digits, 'x', '/', '.p': no '..', no absolute path
    return path


def stored_count(size: int, level: int) -> int:
    """How many hashes level ``level`` stores for a tree of ``size`` leaves."""
    return size >> (TILE_HEIGHT * level)


def tile_width(size: int, level: int, index: int) -> int:
    """Width of tile ``index`` at ``level`` in a tree of ``size``: 256, partial, or refused."""
    count = stored_count(size, level)
    if (index + 1) * TILE_WIDTH <= count:
        return TILE_WIDTH
    width = count - index * TILE_WIDTH
    if width <= 0:
        raise TileError(f"tile {index} at level {level} does not exist in a tree of size {size}")
    return width


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length then its bytes."""
    out = bytearray()
    for entry in entries:
        if len(entry) > MAX_ENTRY_SIZE:
            raise TileError(f"entry of {len(entry)} bytes exceeds the {MAX_ENTRY_SIZE}-byte limit")
        out += len(entry).to_bytes(2, "big") + entry
    return bytes(out)


def decode_bundle(data: bytes, width: int) -> list[bytes]:
    """Split an entry bundle of exactly ``width`` entries, refusing truncation and trailing bytes."""
    entries, offset = [], 0
    while offset < len(data):
        if len(entries) == width:
            raise TileError(f"entry bundle holds more than its {width} entries")
        if offset + 2 > len(data):
            raise TileError("entry bundle is truncated inside a length prefix")
        length = int.from_bytes(data[offset:offset + 2], "big")
        offset += 2
        if offset + length > len(data):
            raise TileError(f"entry bundle is truncated inside entry {len(entries)}")
        entries.append(bytes(data[offset:offset + length]))
        offset += length
    if len(entries) != width:
        raise TileError(f"entry bundle holds {len(entries)} entries, expected {width}")
    return entries


def split_hashes(data: bytes, width: int) -> list[bytes]:
    """The hashes of a tile of ``width``, refusing a tile of any other size."""
    if len(data) != width * HASH_SIZE:
        raise TileError(f"tile of {len(data)} bytes, a tile of width {width} has {width * HASH_SIZE}")
    return [bytes(data[i:i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]


class Fetcher(Protocol):
    """Reads one file of a published log, never more than ``max_bytes``."""

    def fetch(self, path: str, max_bytes: int) -> bytes:
        """The file's bytes; FileNotFoundError if absent, TileError if larger than ``max_bytes``."""


class DirectoryFetcher:
    """Reads a log published as a directory."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root).resolve()

    def fetch(self, path: str, max_bytes: int) -> bytes:
        """See :class:`Fetcher`."""
        with open(_inside(self.root, path), "rb") as f:
            data = f.read(max_bytes + 1)  # one byte over the bound is enough to refuse
        if len(data) > max_bytes:
            raise TileError(f"{path} is larger than {max_bytes} bytes")
        return data


class HTTPFetcher:
    """Reads a log published under an http(s) prefix (a static host, S3, an IPFS gateway)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.timeout = timeout

    def fetch(self, path: str, max_bytes: int) -> bytes:
        """See :class:`Fetcher`."""
        check_log_path(path)
        request = urllib.request.Request(self.base_url + path, headers={"Accept-Encoding": "identity"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                data = response.read(max_bytes + 1)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise FileNotFoundError(f"{self.base_url}{path}: not found") from exc
            raise TileError(f"{self.base_url}{path}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            # HTTPException: a body cut short of its Content-Length (IncompleteRead), among others.
            raise TileError(f"{self.base_url}{path}: {exc}") from exc
        if len(data) > max_bytes:
            raise TileError(f"{path} is larger than {max_bytes} bytes")
        return data


def _inside(root: Path, path: str) -> Path:
    """``root/path``, refusing any path the layout does not produce (:func:`check_log_path`)."""
    check_log_path(path)
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise TileError(f"{path!r} lies outside the log directory")
    return target


class TileReader:
    """The stored hashes and entries of a published tree of ``size`` leaves, read tile by tile."""

    def __init__(self, fetcher: Fetcher, size: int) -> None:
        self.fetcher = fetcher
        self.size = size
        self._tiles: dict[tuple[int, int], list[bytes]] = {}

    def tile(self, level: int, index: int) -> list[bytes]:
        """All hashes of one tile (full, or partial at this size), cached."""
        key = (level, index)
        if key not in self._tiles:
            width = tile_width(self.size, level, index)
            path = tile_path(level, index, width)
            try:
                data = self.fetcher.fetch(path, width * HASH_SIZE)
            except FileNotFoundError as exc:
                raise TileError(f"{path} is missing") from exc
            self._tiles[key] = split_hashes(data, width)
        return self._tiles[key]

    def read_hashes(self, level: int, start: int, count: int) -> Sequence[bytes]:
        """See :class:`provenance.merkle.StoredHashes`."""
        index, offset = divmod(start, TILE_WIDTH)
        if start < 0 or count < 1 or offset + count > TILE_WIDTH:
            raise TileError(f"hashes {start}..{start + count - 1} do not lie in one tile")
        if start + count > stored_count(self.size, level):
            raise TileError(f"hash {start + count - 1} at level {level} is beyond tree size {self.size}")
        return self.tile(level, index)[offset:offset + count]

    def bundle(self, index: int) -> list[bytes]:
        """The entries of bundle ``index``, each checked against its leaf hash in the level-0 tile."""
        width = tile_width(self.size, 0, index)
        path = bundle_path(index, width)
        try:
            data = self.fetcher.fetch(path, width * (2 + MAX_ENTRY_SIZE))
        except FileNotFoundError as exc:
            raise TileError(f"{path} is missing") from exc
        entries = decode_bundle(data, width)
        for offset, (entry, hashed) in enumerate(zip(entries, self.tile(0, index), strict=True)):
            if leaf_hash(entry) != hashed:
                number = index * TILE_WIDTH + offset
                raise TileError(f"entry {number} does not match its leaf hash: altered after the fact")
        return entries

    def entry(self, index: int) -> bytes:
        """Entry ``index``, checked against its leaf hash."""
        if not 0 <= index < self.size:
            raise TileError(f"entry {index} is not below tree size {self.size}")
        bundle, offset = divmod(index, TILE_WIDTH)
        return self.bundle(bundle)[offset]


def write_file(root: Path, path: str, data: bytes) -> None:
    """Write one log file atomically; a tile, bundle or token, once written, may only be rewritten
    identically.

    Every path but the checkpoint names fixed content (a partial tile's path carries its width),
    so different bytes at an existing path can only mean the log is being rewritten.
    """
    target = _inside(root, path)
    if path != CHECKPOINT_PATH and target.exists():
        with open(target, "rb") as f:
            if f.read(len(data) + 1) == data:
                return  # a re-run after a crash rewrites the same bytes: nothing to do
        raise TileError(f"{path} already holds different bytes: the log would be rewritten")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise


class TileWriter:
    """Appends entries to a tiled tree in a directory: full tiles as they fill, partials on flush."""

    def __init__(self, root: str | os.PathLike, size: int = 0) -> None:
        """Resume the tree of ``size`` leaves in ``root`` from its partial tiles (none if empty)."""
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.size = size
        # The right edge: per level, the hashes of the tile still filling; and its entries.
        self.edge: list[list[bytes]] = []
        reader = TileReader(DirectoryFetcher(self.root), size)
        level = 0
        while stored_count(size, level):
            count = stored_count(size, level)
            self.edge.append(reader.tile(level, count // TILE_WIDTH) if count % TILE_WIDTH else [])
            level += 1
        if not self.edge:
            self.edge.append([])
        self.pending: list[bytes] = reader.bundle(size // TILE_WIDTH) if size % TILE_WIDTH else []

    def append(self, entries: Iterable[bytes]) -> int:
        """Append entries (each at most 65,535 bytes); return the new tree size.

        The batch is checked whole first, so a refused entry leaves the tree as it was.
        """
        batch = list(entries)
        for entry in batch:
            if len(entry) > MAX_ENTRY_SIZE:
                raise TileError(f"entry of {len(entry)} bytes exceeds the {MAX_ENTRY_SIZE}-byte limit")
        for entry in batch:
            self.pending.append(entry)
            self.edge[0].append(leaf_hash(entry))
            self.size += 1
            if len(self.pending) == TILE_WIDTH:
                write_file(self.root, bundle_path((self.size - 1) // TILE_WIDTH), encode_bundle(self.pending))
                self.pending = []
            level = 0
            while len(self.edge[level]) == TILE_WIDTH:
                index = stored_count(self.size, level) // TILE_WIDTH - 1
                write_file(self.root, tile_path(level, index), b"".join(self.edge[level]))
                if len(self.edge) == level + 1:
                    self.edge.append([])
                self.edge[level + 1].append(complete_root(self.edge[level]))
                self.edge[level] = []
                level += 1
        return self.size

    def flush(self) -> None:
        """Write the partial tiles and bundle of the current size, so readers can prove it."""
        for level, hashes in enumerate(self.edge):
            if hashes:
                index = stored_count(self.size, level) // TILE_WIDTH
                write_file(self.root, tile_path(level, index, len(hashes)), b"".join(hashes))
        if self.pending:
            write_file(self.root, bundle_path(self.size // TILE_WIDTH, len(self.pending)),
                       encode_bundle(self.pending))

    def read_hashes(self, level: int, start: int, count: int) -> Sequence[bytes]:
        """See :class:`provenance.merkle.StoredHashes`: the edge from memory, the rest from disk."""
        index, offset = divmod(start, TILE_WIDTH)
        if level < len(self.edge) and index == stored_count(self.size, level) // TILE_WIDTH:
            hashes = self.edge[level][offset:offset + count]
            if len(hashes) != count:
                raise TileError(f"hashes {start}..{start + count - 1} at level {level} are not stored")
            return hashes
        return TileReader(DirectoryFetcher(self.root), self.size).read_hashes(level, start, count)
