"""S3 store via boto3, for AWS or any S3-compatible endpoint; keys are content addresses."""

from __future__ import annotations

import threading

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from mirror.storage.base import BackendHealth, BlobStore, StoredBlob, sha256_hex
from samizdat.errors import BlobNotFoundError, StorageError, StorageUnavailableError

KEY_PREFIX = "blobs/sha256/"

_MISSING_CODES = {"404", "NoSuchKey", "NotFound"}


def _translate(exc: Exception, what: str) -> StorageError:
    """Turn a botocore error into a Samizdat one so callers never see boto."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            return BlobNotFoundError(f"S3 has no {what}")
        return StorageError(f"S3 refused {what}: {code or exc}")
    if isinstance(exc, EndpointConnectionError) or "connect" in type(exc).__name__.lower():
        return StorageUnavailableError(f"S3 unreachable during {what}: {exc}")
    return StorageError(f"S3 failed during {what}: {exc}")


class S3Store(BlobStore):
    """Stores each blob once at ``blobs/sha256/<hex>`` in one bucket, created when missing."""

    name = "s3"

    def __init__(self, bucket: str, endpoint_url: str = "", region: str = "us-east-1"):
        self.bucket = bucket
        self.endpoint_url = endpoint_url or None
        # Short timeouts and few retries: an outage should surface quickly so it can be retried
        # later, rather than stall a mirror run.
        config = Config(
            connect_timeout=5,
            read_timeout=60,
            retries={"max_attempts": 2, "mode": "standard"},
            signature_version="s3v4",
        )
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=region, config=config
        )
        self._bucket_ready = False
        self._lock = threading.Lock()

    @staticmethod
    def key_for(digest: str) -> str:
        """The object key for a sha256 digest."""
        return KEY_PREFIX + digest

    def _ensure_bucket(self) -> None:
        if self._bucket_ready:
            return
        with self._lock:
            if self._bucket_ready:
                return
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                code = str(exc.response.get("Error", {}).get("Code", ""))
                if code not in _MISSING_CODES and code != "NoSuchBucket":
                    raise _translate(exc, f"bucket {self.bucket}") from exc
                try:
                    self.client.create_bucket(Bucket=self.bucket)
                except (BotoCoreError, ClientError) as create_exc:
                    raise _translate(create_exc, f"create bucket {self.bucket}") from create_exc
            except BotoCoreError as exc:
                raise _translate(exc, f"bucket {self.bucket}") from exc
            self._bucket_ready = True

    def put(self, data: bytes) -> StoredBlob:
        """Upload unless an object with the same sha256 key already exists."""
        digest = sha256_hex(data)
        key = self.key_for(digest)
        self._ensure_bucket()
        if self.exists(key):
            return StoredBlob(self.name, key, digest, len(data), uploaded=False)
        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                Metadata={"sha256": digest},
            )
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, f"upload {key}") from exc
        return StoredBlob(self.name, key, digest, len(data), uploaded=True)

    def get(self, locator: str) -> bytes:
        """Download an object's bytes."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=locator)
            return response["Body"].read()
        except (BotoCoreError, ClientError) as exc:
            raise _translate(exc, f"object {locator}") from exc

    def exists(self, locator: str) -> bool:
        """HEAD the object."""
        try:
            self.client.head_object(Bucket=self.bucket, Key=locator)
            return True
        except ClientError as exc:
            err = _translate(exc, f"object {locator}")
            if isinstance(err, BlobNotFoundError):
                return False
            raise err from exc
        except BotoCoreError as exc:
            raise _translate(exc, f"object {locator}") from exc

    def url(self, locator: str) -> str:
        """An s3:// URI for the object."""
        return f"s3://{self.bucket}/{locator}"

    def check(self) -> BackendHealth:
        """Reachable when the bucket exists or can be created."""
        try:
            self._bucket_ready = False
            self._ensure_bucket()
        except StorageError as exc:
            return BackendHealth(self.name, False, str(exc))
        where = self.endpoint_url or "AWS"
        return BackendHealth(self.name, True, f"bucket {self.bucket} at {where}")
