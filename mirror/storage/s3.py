"""S3 store via boto3, for AWS or any S3-compatible endpoint; keys are content addresses."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectionError as BotoConnectionError,
    ReadTimeoutError,
)

from mirror.storage.base import BackendHealth, BlobStore, StoredBlob, sha256_hex
from mirror.storage.breaker import BackendDownError, CircuitBreaker
from samizdat.errors import BlobNotFoundError, StorageError, StorageUnavailableError
from samizdat.paths import confined_name

KEY_PREFIX = "blobs/sha256/"

T = TypeVar("T")

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


class BucketGoneError(StorageError):
    """The bucket was there and is not any more (deleted, or a server restarted without its data)."""


def _translate(exc: Exception, what: str) -> StorageError:
    """Turn a botocore error into a Samizdat one so callers never see boto."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            return BucketGoneError(f"S3 has no bucket for {what}")
        if code in _MISSING_CODES:
            return BlobNotFoundError(f"S3 has no {what}")
        return StorageError(f"S3 refused {what}: {code or exc}")
    # Refused, reset or timed out (a hung server): all mean "down right now", which opens the breaker.
    if isinstance(exc, (BotoConnectionError, ConnectionClosedError, ReadTimeoutError)):
        return StorageUnavailableError(f"S3 unreachable during {what}: {exc}")
    return StorageError(f"S3 failed during {what}: {exc}")


class S3Store(BlobStore):
    """Stores each blob once at ``blobs/sha256/<hex>`` in one bucket, created when missing."""

    name = "s3"

    def __init__(self, bucket: str, endpoint_url: str = "", region: str = "us-east-1",
                 timeout: float = 20.0, cooldown: float = 60.0):
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        # Short timeouts and few retries: an outage should surface quickly so it can be retried
        # later, rather than stall a mirror run; the breaker then stops calling it at all.
        self.client = self._make_client(region, timeout, attempts=2)
        # The probe must be cheap even against a hung server: one attempt, a few seconds.
        self._probe_client = self._make_client(region, min(timeout, 3.0), attempts=1)
        self.breaker = CircuitBreaker("S3", cooldown, lambda: self.check().ok)
        self._bucket_ready = False
        self._lock = threading.Lock()

    def _make_client(self, region: str, timeout: float, attempts: int):
        config = Config(
            connect_timeout=min(timeout, 5.0),
            read_timeout=timeout,
            retries={"max_attempts": attempts, "mode": "standard"},
            signature_version="s3v4",
        )
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=region, config=config
        )

    @staticmethod
    def key_for(digest: str) -> str:
        """The object key for a sha256 digest."""
        return KEY_PREFIX + digest

    def _ensure_bucket(self, client=None) -> None:
        """Create the bucket once if missing; ``client`` is the probe's (the breaker's own check)."""
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            if client is None:
                # Threads queued on the lock behind one whose request hung must not each wait
                # out the timeout again once it has opened the breaker.
                if self.breaker.is_open:
                    raise BackendDownError(f"S3 is treated as down (bucket {self.bucket})")
                client = self.client
            try:
                client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in _MISSING_CODES and code != "NoSuchBucket":
                    raise _translate(exc, f"bucket {self.bucket}") from exc
                try:
                    client.create_bucket(Bucket=self.bucket)
                except (BotoCoreError, ClientError) as create_exc:
                    raise _translate(create_exc, f"create bucket {self.bucket}") from create_exc
            except BotoCoreError as exc:
                raise _translate(exc, f"bucket {self.bucket}") from exc
            self._bucket_ready = True

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run one S3 request behind the breaker, with botocore's errors translated."""
        with self.breaker.guard():
            try:
                return request()
            except (BotoCoreError, ClientError) as exc:
                raise _translate(exc, what) from exc

    def put(self, data: bytes) -> StoredBlob:
        """Upload unless an object with the same sha256 key already exists."""
        digest = sha256_hex(data)
        key = self.key_for(digest)
        with self.breaker.guard():
            self._ensure_bucket()
        if self.exists(key):
            return StoredBlob(self.name, key, digest, len(data), uploaded=False)

        def upload():
            return self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata={"sha256": digest})

        try:
            self._call(f"upload {key}", upload)
        except BucketGoneError:
            # The bucket was made once and is gone now (an emptied store): make it again, once.
            self._bucket_ready = False
            with self.breaker.guard():
                self._ensure_bucket()
            self._call(f"upload {key}", upload)
        return StoredBlob(self.name, key, digest, len(data), uploaded=True)

    def get(self, locator: str) -> bytes:
        """Download an object's bytes."""
        return self._call(
            f"object {locator}", lambda: self.client.get_object(Bucket=self.bucket, Key=locator)["Body"].read()
        )

    def exists(self, locator: str) -> bool:
        """HEAD the object."""
        try:
            self._call(f"object {locator}", lambda: self.client.head_object(Bucket=self.bucket, Key=locator))
        except BlobNotFoundError:
            return False
        return True

    def url(self, locator: str) -> str:
        """An s3:// URI for the object."""
        return f"s3://{self.bucket}/{locator}"

    def check(self) -> BackendHealth:
        """Reachable when the bucket exists or can be created (a short probe, never retried)."""
        try:
            self._bucket_ready = False
            self._ensure_bucket(self._probe_client)
        except StorageError as exc:
            return BackendHealth(self.name, False, str(exc))
        where = self.endpoint_url or "AWS"
        return BackendHealth(self.name, True, f"bucket {self.bucket} at {where}")

    # --- Named objects beside the blobs: the rebuild index (mirror/rebuild.py) ----------------

    def put_named(self, key: str, data: bytes) -> None:
        """Write ``data`` under ``key`` (not a content address), overwriting any object there."""
        confined_name(key)
        with self.breaker.guard():
            self._ensure_bucket()
        self._call(f"upload {key}", lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=data))

    def delete_named(self, key: str) -> None:
        """Remove the object ``key`` (no error when it is already gone)."""
        self._call(f"delete {key}", lambda: self.client.delete_object(Bucket=self.bucket, Key=key))

    def list_keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Every (key, size) under ``prefix``, page by page (S3 lists at most 1,000 per request)."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket, Prefix=prefix))
        while True:
            # Each page is one request, so each goes through the breaker and the translation.
            page = self._call(f"listing {prefix}", lambda: next(pages, None))
            if page is None:
                return
            for item in page.get("Contents", ()):
                yield item["Key"], int(item["Size"])
