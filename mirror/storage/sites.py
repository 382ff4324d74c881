"""Static sites: publishing a tree of public files (packs, embed.js) where anyone can read them.

Unlike blob stores (content-addressed, private), a static site keeps files under readable paths
with their Content-Type and Cache-Control, open to GET from any origin. Two implementations:
an S3 prefix (bucket CORS and a public-read policy for that prefix) and an IPFS directory (one root
CID per publish, an IPNS name updated to it). No Flask here; errors become StorageError.
"""

from __future__ import annotations

import json
import posixpath
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import ipfshttpclient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from ipfshttpclient import exceptions as ipfs_exc

from samizdat.errors import StorageError
from samizdat.paths import confined_name


@dataclass(frozen=True)
class SiteFile:
    """One public file: its path under the site root, its bytes (or the local file holding them)
    and HTTP metadata."""

    path: str
    # A local file is read only when it is sent: a large publish never holds every pack in memory,
    # and the shards a site already has are never read at all.
    data: bytes | Path
    content_type: str
    cache_control: str
    # Content-addressed files never change: a copy already there is kept, not sent again.
    immutable: bool = False
    # Saved, never shown, where the destination can say so (S3's Content-Disposition): a static
    # host sends no CSP, so this is what keeps an archived file's script from running there.
    download: bool = False

    def read(self) -> bytes:
        """The file's bytes."""
        return self.data.read_bytes() if isinstance(self.data, Path) else self.data


@dataclass
class SiteReport:
    """What one publish to one site did."""

    site: str
    uploaded: int = 0
    skipped: int = 0
    bytes: int = 0
    deleted: int = 0
    root_cid: str | None = None
    ipns_name: str | None = None
    notes: list[str] = field(default_factory=list)


class StaticSite(ABC):
    """A place that serves a tree of files publicly."""

    name = "abstract"

    @abstractmethod
    def put(self, files: list[SiteFile], report: SiteReport) -> None:
        """Write ``files`` (others already there stay)."""

    @abstractmethod
    def delete(self, paths: list[str], report: SiteReport) -> None:
        """Remove the files at ``paths`` (under the site root); a missing one is not an error."""


class S3Site(StaticSite):
    """Files under ``prefix`` in a bucket, publicly readable, GET allowed from any origin."""

    name = "s3"

    def __init__(self, bucket: str, prefix: str, endpoint_url: str = "", region: str = "us-east-1"):
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/"
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2, "mode": "standard"})
        self.client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region, config=config
        )
        self._ready = False

    def _prepare(self, report: SiteReport) -> None:
        """Create the bucket if needed, open GET to every origin, and make the prefix public."""
        if self._ready:
            return
        try:
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError:
                self.client.create_bucket(Bucket=self.bucket)
            self.client.put_bucket_cors(Bucket=self.bucket, CORSConfiguration={"CORSRules": [{
                "AllowedMethods": ["GET", "HEAD"], "AllowedOrigins": ["*"],
                "AllowedHeaders": ["*"], "MaxAgeSeconds": 86400,
            }]})
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(f"S3 refused to prepare bucket {self.bucket}: {exc}") from exc
        # One statement per prefix, merged into the bucket's policy: the embed's packs and the
        # archive's static copy share a bucket, and a policy replaced whole would close the other.
        sid = "SamizdatPublicRead" + "".join(c for c in self.prefix.title() if c.isalnum())
        statement = {
            "Sid": sid, "Effect": "Allow", "Principal": "*",
            "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{self.bucket}/{self.prefix}*",
        }
        try:
            try:
                policy = json.loads(self.client.get_bucket_policy(Bucket=self.bucket)["Policy"])
            except ClientError:
                policy = {"Version": "2012-10-17", "Statement": []}
            policy["Statement"] = [s for s in policy.get("Statement", [])
                                   if s.get("Sid") not in (sid, "SamizdatPublicRead")
                                   or s.get("Resource") != statement["Resource"]] + [statement]
            self.client.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
        except (BotoCoreError, ClientError) as exc:
            # Block Public Access refuses this on AWS until an operator allows it: say so, go on.
            report.notes.append(f"public-read policy not set on {self.bucket}: {exc}")
        self._ready = True

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError:
            return False

    def put(self, files: list[SiteFile], report: SiteReport) -> None:
        """Upload each file (immutable ones only when missing) with its metadata."""
        self._prepare(report)
        for f in files:
            key = self.prefix + confined_name(f.path)
            try:
                if f.immutable and self._exists(key):
                    report.skipped += 1
                    continue
                data = f.read()
                extra = {"ContentDisposition": "attachment"} if f.download else {}
                self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=f.content_type,
                                       CacheControl=f.cache_control, **extra)
            except (BotoCoreError, ClientError) as exc:
                raise StorageError(f"S3 refused {key}: {exc}") from exc
            report.uploaded += 1
            report.bytes += len(data)

    def delete(self, paths: list[str], report: SiteReport) -> None:
        """Delete the objects of ``paths``, a thousand keys per request."""
        self._prepare(report)
        keys = [self.prefix + confined_name(p) for p in paths]
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start:start + 1000]]
            try:
                answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                raise StorageError(f"S3 refused to delete site files: {exc}") from exc
            if answer.get("Errors"):
                raise StorageError(f"S3 refused to delete {answer['Errors'][0].get('Key')}")
            report.deleted += len(batch)


class IpfsSite(StaticSite):
    """A directory kept in the node's MFS at ``/samizdat-sites/<name>``; each publish pins its root.

    Files already in the directory with the same bytes are not sent again; the IPNS name of the
    node's own key is pointed at the new root by :meth:`publish_root`.
    """

    name = "ipfs"

    def __init__(self, api_multiaddr: str, site: str, timeout: float = 30.0):
        self.root = f"/samizdat-sites/{site}"
        self.client = ipfshttpclient.Client(api_multiaddr, timeout=timeout)

    def _stat(self, path: str) -> dict | None:
        try:
            return self.client.files.stat(path)
        except ipfs_exc.ErrorResponse:
            return None

    def put(self, files: list[SiteFile], report: SiteReport) -> None:
        """Add each file's bytes and link it into the site directory by CID."""
        try:
            for f in files:
                target = f"{self.root}/{confined_name(f.path)}"
                if f.immutable and self._stat(target) is not None:
                    report.skipped += 1
                    continue
                data = f.read()
                cid = self.client.add_bytes(data)
                self.client.files.mkdir(posixpath.dirname(target), parents=True)
                if self._stat(target) is not None:
                    self.client.files.rm(target)
                self.client.files.cp(f"/ipfs/{cid}", target)
                report.uploaded += 1
                report.bytes += len(data)
        except ipfs_exc.Error as exc:
            raise StorageError(f"IPFS refused the site files: {exc}") from exc

    def delete(self, paths: list[str], report: SiteReport) -> None:
        """Unlink ``paths`` from the site directory (the next root no longer lists them)."""
        try:
            for path in paths:
                target = f"{self.root}/{confined_name(path)}"
                if self._stat(target) is not None:
                    self.client.files.rm(target)
                report.deleted += 1
        except ipfs_exc.Error as exc:
            raise StorageError(f"IPFS refused to remove site files: {exc}") from exc

    def prune(self, directory: str, keep: set[str]) -> int:
        """Remove files of ``directory`` whose names are not in ``keep``; return how many."""
        try:
            entries = self.client.files.ls(f"{self.root}/{confined_name(directory)}").get("Entries") or []
            gone = [e["Name"] for e in entries if e["Name"] not in keep]
            for name in gone:
                self.client.files.rm(f"{self.root}/{directory}/{name}")
        except ipfs_exc.Error as exc:
            raise StorageError(f"IPFS refused to prune {directory}: {exc}") from exc
        return len(gone)

    def directory_cid(self, path: str = "") -> str:
        """The CID of the site directory (or of one of its subdirectories) as it is now."""
        stat = self._stat(f"{self.root}/{path}".rstrip("/"))
        if stat is None:
            raise StorageError(f"IPFS site has no {path or 'root'}")
        return str(stat["Hash"])

    def ipns_name(self) -> str:
        """The IPNS name this node publishes under (its own key), known before any publish."""
        try:
            return str(self.client.id()["ID"])
        except ipfs_exc.Error as exc:
            raise StorageError(f"IPFS did not say its id: {exc}") from exc

    def pin_root(self) -> str:
        """Pin the site's root as it is now and return its CID (no IPNS: the log's copy is named
        by CID, the node's IPNS name belongs to the sites that publish one)."""
        try:
            cid = self.directory_cid()
            self.client.pin.add(cid)
        except ipfs_exc.Error as exc:
            raise StorageError(f"IPFS refused to pin the site: {exc}") from exc
        return cid

    def publish_root(self, report: SiteReport) -> None:
        """Pin the site's root and point the node's IPNS name at it."""
        try:
            cid = self.directory_cid()
            self.client.pin.add(cid)
            # allow_offline: a node with no peers (a private or test node) still updates its record.
            published = self.client.name.publish(f"/ipfs/{cid}", allow_offline=True, lifetime="8760h")
        except ipfs_exc.Error as exc:
            raise StorageError(f"IPFS refused to publish the site: {exc}") from exc
        report.root_cid = cid
        report.ipns_name = str(published["Name"])
