"""Storage back-ends behind one interface: local directory, S3 and IPFS. No Flask in here."""

from __future__ import annotations

from config.settings import Settings
from mirror.storage.base import BackendHealth, BlobStore, StoredBlob, sha256_hex
from mirror.storage.breaker import BackendDownError, CircuitBreaker
from mirror.storage.ipfs import IpfsStore
from mirror.storage.local import LocalStore
from mirror.storage.s3 import S3Store

__all__ = [
    "BackendDownError",
    "BackendHealth",
    "BlobStore",
    "CircuitBreaker",
    "IpfsStore",
    "LocalStore",
    "S3Store",
    "StoredBlob",
    "build_stores",
    "sha256_hex",
]


def build_stores(settings: Settings) -> dict[str, BlobStore]:
    """Every configured back-end by name; the local store is always there."""
    stores: dict[str, BlobStore] = {"local": LocalStore(settings.spool_dir)}
    if settings.s3_bucket:
        stores["s3"] = S3Store(
            settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region,
            timeout=settings.s3_timeout, cooldown=settings.backend_cooldown_seconds,
        )
    if settings.ipfs_api:
        stores["ipfs"] = IpfsStore(
            settings.ipfs_api, settings.ipfs_timeout, cooldown=settings.backend_cooldown_seconds
        )
    return stores
