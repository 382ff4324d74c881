"""The storage interface every back-end implements: put/get/exists/url plus a health check."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass


def sha256_hex(data: bytes) -> str:
    """The hex sha256 of ``data``: the content address used by every back-end."""
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class StoredBlob:
    """Where a back-end keeps some bytes; ``uploaded`` is False when they were already there."""

    backend: str
    locator: str  # the key (local, S3) or CID (IPFS) to get the bytes back
    sha256: str
    size: int
    uploaded: bool


@dataclass(frozen=True)
class BackendHealth:
    """Whether a back-end answered a cheap request, with a one-line detail."""

    backend: str
    ok: bool
    detail: str


class BlobStore(ABC):
    """A content-addressed byte store. Implementations raise only Samizdat storage errors."""

    name: str = "abstract"

    @abstractmethod
    def put(self, data: bytes) -> StoredBlob:
        """Store ``data`` under its content address; storing bytes already there uploads nothing."""

    @abstractmethod
    def get(self, locator: str) -> bytes:
        """Return the bytes at ``locator``; raise BlobNotFoundError when absent."""

    @abstractmethod
    def exists(self, locator: str) -> bool:
        """Whether ``locator`` is present in this store."""

    @abstractmethod
    def url(self, locator: str) -> str:
        """A URL (or URI) at which a reader can retrieve the bytes."""

    @abstractmethod
    def check(self) -> BackendHealth:
        """Probe the back-end cheaply and say whether it is reachable."""
