"""IPFS store via ipfshttpclient against a Kubo-compatible RPC API: add, pin, cat."""

from __future__ import annotations

import posixpath
import threading
import uuid
import warnings

import ipfshttpclient
from ipfshttpclient import exceptions as ipfs_exc

from mirror.storage.base import BackendHealth, BlobStore, StoredBlob, sha256_hex
from mirror.storage.breaker import CircuitBreaker
from samizdat.errors import BlobNotFoundError, StorageError, StorageUnavailableError
from samizdat.paths import confined_name

# ipfshttpclient 0.7 (its last release) hands urllib3 1.x's ``strict=True`` to every connection
# pool it makes; urllib3 2 drops it and warns each time, which `flask doctor` and every process
# talking to IPFS printed. Only that warning, from that place, is silenced.
warnings.filterwarnings(
    "ignore",
    message=r"The 'strict' parameter is no longer needed",
    category=FutureWarning,
    module=r"urllib3\.poolmanager",
)


def _translate(exc: Exception, what: str) -> StorageError:
    """Turn an ipfshttpclient error into a Samizdat one."""
    if isinstance(exc, (ipfs_exc.ConnectionError, ipfs_exc.TimeoutError)):
        return StorageUnavailableError(f"IPFS unreachable during {what}: {exc}")
    if isinstance(exc, ipfs_exc.ErrorResponse):
        text = str(exc).lower()
        if "not found" in text or "no link named" in text or "invalid" in text:
            return BlobNotFoundError(f"IPFS has no {what}: {exc}")
        return StorageError(f"IPFS refused {what}: {exc}")
    return StorageError(f"IPFS failed during {what}: {exc}")


class IpfsStore(BlobStore):
    """Adds and pins blobs on an IPFS node; the locator is the CID."""

    name = "ipfs"

    def __init__(self, api_multiaddr: str, timeout: float = 30.0, cooldown: float = 60.0):
        self.api = api_multiaddr
        self.timeout = timeout
        self._local = threading.local()
        # After a timeout or a refused connection, calls fail at once until a short probe passes.
        self.breaker = CircuitBreaker("IPFS", cooldown, lambda: self.check().ok)

    @property
    def client(self) -> ipfshttpclient.Client:
        """A client per thread: ipfshttpclient's sessions are not thread-safe."""
        client = getattr(self._local, "client", None)
        if client is None:
            # ipfshttpclient.connect() refuses every daemon newer than 0.7 (VersionMismatch), so the
            # client is built directly and the version checked in check().
            try:
                client = ipfshttpclient.Client(self.api, timeout=self.timeout)
            except ipfs_exc.Error as exc:
                raise StorageError(f"bad IPFS API address {self.api!r}: {exc}") from exc
            self._local.client = client
        return client

    def put(self, data: bytes) -> StoredBlob:
        """Add and pin ``data``; IPFS itself deduplicates identical blocks."""
        digest = sha256_hex(data)
        with self.breaker.guard():
            try:
                # pin=true pins as part of the add (checked against the daemon): no second call.
                cid = self.client.add_bytes(data, opts={"pin": "true"})
            except ipfs_exc.Error as exc:
                raise _translate(exc, "add") from exc
        return StoredBlob(self.name, str(cid), digest, len(data), uploaded=True)

    def get(self, locator: str) -> bytes:
        """Cat the CID's bytes."""
        with self.breaker.guard():
            try:
                return self.client.cat(locator)
            except ipfs_exc.Error as exc:
                raise _translate(exc, f"CID {locator}") from exc

    def exists(self, locator: str) -> bool:
        """Whether the CID is pinned on this node."""
        with self.breaker.guard():
            try:
                pins = self.client.pin.ls(locator, type="recursive")
            except ipfs_exc.ErrorResponse as exc:
                if "not pinned" in str(exc).lower() or "invalid" in str(exc).lower():
                    return False
                raise _translate(exc, f"pin of {locator}") from exc
            except ipfs_exc.Error as exc:
                raise _translate(exc, f"pin of {locator}") from exc
        return locator in (pins.get("Keys") or {})

    def make_directory(self, entries: dict[str, str]) -> str:
        """Build and pin a UnixFS directory of already-added CIDs (name → CID); return its CID.

        Uses the node's MFS, so no bytes are sent again: each entry is linked by CID.
        """
        # Every name is checked before the scratch directory exists: nothing is half-built.
        for name in entries:
            confined_name(name)
        scratch = f"/samizdat-tmp/{uuid.uuid4().hex}"
        with self.breaker.guard():
            client = self.client
            try:
                client.files.mkdir(scratch, parents=True)
                for name, cid in sorted(entries.items()):
                    parent = posixpath.dirname(name)
                    if parent:
                        client.files.mkdir(f"{scratch}/{parent}", parents=True)
                    client.files.cp(f"/ipfs/{cid}", f"{scratch}/{name}")
                root = client.files.stat(scratch)["Hash"]
                client.pin.add(root)
            except ipfs_exc.Error as exc:
                error = _translate(exc, "directory build")
                # A node that timed out would only time out again on the clean-up.
                if not isinstance(error, StorageUnavailableError):
                    self._remove_scratch(scratch)
                raise error from exc
            self._remove_scratch(scratch)
        return str(root)

    def _remove_scratch(self, scratch: str) -> None:
        try:
            self.client.files.rm(scratch, recursive=True)
        except ipfs_exc.Error:
            pass  # a leftover scratch dir in MFS is harmless; the root is pinned

    def url(self, locator: str) -> str:
        """An ipfs:// URI, resolvable through any gateway."""
        return f"ipfs://{locator}"

    def check(self) -> BackendHealth:
        """Ask the daemon for its version (a short probe: the breaker waits on it)."""
        try:
            version = self.client.version(timeout=min(self.timeout, 3.0))
        except StorageError as exc:
            return BackendHealth(self.name, False, str(exc))
        except ipfs_exc.Error as exc:
            return BackendHealth(self.name, False, str(_translate(exc, "version")))
        return BackendHealth(self.name, True, f"{self.api} (IPFS {version.get('Version', '?')})")
