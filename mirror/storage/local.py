"""Local directory store: the embedded default, so Samizdat runs with no S3 and no IPFS."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from mirror.storage.base import BackendHealth, BlobStore, StoredBlob, sha256_hex
from samizdat.atomicfile import write_atomic
from samizdat.errors import BlobNotFoundError, StorageError, StorageFullError

# Write failures that mean "no room": a full disk, a quota, a file-size limit (RLIMIT_FSIZE).
_NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class LocalStore(BlobStore):
    """Keeps blobs as files named by sha256 under a directory, fanned out by prefix."""

    name = "local"

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, locator: str) -> Path:
        if len(locator) != 64 or any(c not in "0123456789abcdef" for c in locator):
            raise BlobNotFoundError(f"not a sha256 locator: {locator!r}")
        return self.root / locator[:2] / locator[2:4] / locator

    def put(self, data: bytes) -> StoredBlob:
        """Write ``data`` atomically (temp file + rename) unless a file with its hash exists."""
        digest = sha256_hex(data)
        path = self._path(digest)
        if path.exists():
            return StoredBlob(self.name, digest, digest, len(data), uploaded=False)
        try:
            # Written whole, then renamed: a crash never leaves a half-written blob under a real
            # name, and a write that fails half-way (disk full) leaves no partial file behind.
            write_atomic(path, data, mode=0o600, sync=True)
        except OSError as exc:
            error = StorageFullError if exc.errno in _NO_ROOM else StorageError
            raise error(f"local store cannot write {path}: {exc}") from exc
        return StoredBlob(self.name, digest, digest, len(data), uploaded=True)

    def get(self, locator: str) -> bytes:
        """Read the blob back."""
        try:
            return self._path(locator).read_bytes()
        except FileNotFoundError:
            raise BlobNotFoundError(f"no local blob {locator}") from None
        except OSError as exc:
            raise StorageError(f"local store cannot read {locator}: {exc}") from exc

    def exists(self, locator: str) -> bool:
        """Whether the blob file exists."""
        try:
            return self._path(locator).is_file()
        except BlobNotFoundError:
            return False

    def url(self, locator: str) -> str:
        """A file:// URI for the blob."""
        return self._path(locator).resolve().as_uri()

    def check(self) -> BackendHealth:
        """Writable directory or not."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            return BackendHealth(self.name, False, f"{self.root}: {exc}")
        if not os.access(self.root, os.W_OK):
            return BackendHealth(self.name, False, f"{self.root} is not writable")
        return BackendHealth(self.name, True, str(self.root.resolve()))
