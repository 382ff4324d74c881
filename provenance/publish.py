"""Publishing the log directory to S3 and IPFS, beside the packs and the static copy.

The log directory (``checkpoint``, ``tile/…``, ``verifier-key`` and whatever else is published
beside them) is copied as it is: to the bucket's ``log/`` (so ``<S3 public base>/log/checkpoint``
mirrors the app's ``/log/checkpoint``) and to the IPFS directory ``/samizdat-sites/log``, whose
pinned root serves ``<gateway>/ipfs/<root>/log/checkpoint``. Only what is new or changed is sent
(a record of each site's paths and sha256), and the checkpoint always last, so no reader of a copy
sees a checkpoint without the tiles that prove it. A site that fails keeps what it had; the next
pass sends what is still missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from config.settings import Settings
from mirror.storage.sites import IpfsSite, S3Site, SiteFile, SiteReport, StaticSite
from provenance.appender import VERIFIER_KEY_PATH
from provenance.errors import ProvenanceError, TileError
from provenance.routes import (
    CHECKPOINT_CACHE_CONTROL,
    FULL_TILE_CACHE_CONTROL,
    PARTIAL_TILE_CACHE_CONTROL,
    TIMESTAMP_MIMETYPE,
)
from provenance.tiles import CHECKPOINT_PATH, parse_tile_path, parse_timestamp_path
from samizdat.atomicfile import write_atomic
from samizdat.errors import StorageError, UnsafePathError
from samizdat.filelock import try_lock
from samizdat.paths import confined_file, confined_name

# The S3 prefix and the IPFS (MFS) site name; the static copy also carries a copy under its log/.
LOG_SITE = "log"
RECORD_DIR = "log-publish"  # under DATA_DIR: what each site holds, the last result, the lock
TEXT = "text/plain; charset=utf-8"
OCTETS = "application/octet-stream"
PUT_BATCH = 64


@dataclass(frozen=True)
class LogFile:
    """One published file of the log: its path under the log directory, bytes or file, headers."""

    path: str
    data: bytes | Path
    sha256: str
    size: int
    content_type: str
    cache_control: str
    immutable: bool = False

    def site_file(self, prefix: str = "") -> SiteFile:
        """The file as a static site publishes it, under ``prefix``."""
        return SiteFile(prefix + self.path, self.data, self.content_type, self.cache_control,
                        self.immutable)


@dataclass(frozen=True)
class LogSnapshot:
    """The log as it stands: the checkpoint read first, then every file it may need."""

    checkpoint: LogFile | None
    files: list[LogFile]  # all but the checkpoint
    refused: list[str] = field(default_factory=list)  # entries never published, and why


def headers_for(path: str) -> tuple[str, str, bool]:
    """(Content-Type, Cache-Control, immutable) of a log file, as the app's /log routes send it."""
    if path in (CHECKPOINT_PATH, VERIFIER_KEY_PATH):
        return TEXT, CHECKPOINT_CACHE_CONTROL, False
    try:
        parse_timestamp_path(path)
        return TIMESTAMP_MIMETYPE, FULL_TILE_CACHE_CONTROL, True  # a token is never rewritten
    except TileError:
        pass
    try:
        parse_tile_path(path)
    except TileError:
        # Files other parts publish beside the checkpoint (cosignatures, say): they may change
        # with each checkpoint, so they are revalidated like it.
        return OCTETS, CHECKPOINT_CACHE_CONTROL, False
    if ".p/" in path:
        return OCTETS, PARTIAL_TILE_CACHE_CONTROL, False
    return OCTETS, FULL_TILE_CACHE_CONTROL, True


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def snapshot(log_path: Path, known: dict[str, str] | None = None) -> LogSnapshot:
    """Every non-dot file under ``log_path`` that stays inside it, the checkpoint read first.

    Reading the checkpoint before listing is what makes the snapshot coherent: the writer puts
    a checkpoint's tiles in place before the checkpoint, and never removes a tile. ``known``
    (path → sha256) spares hashing tiles again: their bytes never change. Symlinks, dotfiles
    and names no static site could hold safely are left out and named in ``refused``.
    """
    root = Path(log_path)
    known = known or {}
    checkpoint = None
    try:
        data = (root / CHECKPOINT_PATH).read_bytes() if not (root / CHECKPOINT_PATH).is_symlink() else None
    except OSError:
        data = None
    if data is not None:
        ctype, cache, _ = headers_for(CHECKPOINT_PATH)
        checkpoint = LogFile(CHECKPOINT_PATH, data, hashlib.sha256(data).hexdigest(), len(data),
                             ctype, cache)
    files: list[LogFile] = []
    refused: list[str] = []
    if not root.is_dir():
        return LogSnapshot(checkpoint, files, refused)
    for directory, subdirs, names in os.walk(root, followlinks=False):
        here = Path(directory)
        for name in list(subdirs):
            if name.startswith(".") or (here / name).is_symlink():
                subdirs.remove(name)
                if not name.startswith("."):
                    refused.append(f"{(here / name).relative_to(root).as_posix()}: a symlink")
        subdirs.sort()
        for name in sorted(names):
            if name.startswith("."):
                continue  # the writer's lock, temporary files: never published
            source = here / name
            rel = source.relative_to(root).as_posix()
            if rel == CHECKPOINT_PATH:
                continue
            if source.is_symlink():
                refused.append(f"{rel}: a symlink")
                continue
            try:
                confined_file(root, confined_name(rel))
            except UnsafePathError as exc:
                refused.append(f"{rel[:120]!r}: {exc}")
                continue
            ctype, cache, immutable = headers_for(rel)
            # Every tile and token path names fixed bytes (a partial tile's carries its width, and
            # the writer refuses to rewrite any with other bytes): one known is never hashed again.
            if cache != CHECKPOINT_CACHE_CONTROL and rel in known:
                sha, size = known[rel], source.stat().st_size
            else:
                try:
                    sha, size = _sha256_file(source)
                except OSError as exc:
                    refused.append(f"{rel}: {exc.strerror or exc}")
                    continue
            files.append(LogFile(rel, source, sha, size, ctype, cache, immutable))
    return LogSnapshot(checkpoint, files, refused)


@dataclass
class LogPublishReport:
    """What one publish of the log did, per site, and what it refused or could not do."""

    size: int | None = None  # the checkpoint's tree size, if the log has one
    sites: list[SiteReport] = field(default_factory=list)
    # Per site, the paths sent, in the order they were sent (the checkpoint always last).
    sent: dict[str, list[str]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    root_cid: str | None = None
    seconds: float = 0.0

    @property
    def uploaded(self) -> int:
        """Files uploaded to every site together."""
        return sum(s.uploaded for s in self.sites)

    @property
    def bytes(self) -> int:
        """Bytes uploaded to every site together."""
        return sum(s.bytes for s in self.sites)


class PublishRecord:
    """What each site holds after its last publish (path → sha256) and the last result."""

    def __init__(self, settings: Settings):
        self.path = settings.data_dir / RECORD_DIR / "record.json"
        try:
            loaded = json.loads(self.path.read_bytes())
            self.sites: dict[str, dict[str, str]] = dict(loaded.get("sites") or {})
            self.last: dict = dict(loaded.get("last") or {})
        except (OSError, ValueError, AttributeError, TypeError):
            self.sites, self.last = {}, {}

    def get(self, site: str) -> dict[str, str]:
        """The paths ``site`` holds with their sha256; empty before its first publish."""
        held = self.sites.get(site)
        return dict(held) if isinstance(held, dict) else {}

    def save(self) -> None:
        """Write the record atomically."""
        write_atomic(self.path,
                     json.dumps({"sites": self.sites, "last": self.last}, sort_keys=True).encode())


@dataclass(frozen=True)
class LogSite:
    """A configured destination: its name, the log's path prefix in it, and how to open it
    (only when something is to be sent: making a boto3 client alone costs most of a second)."""

    name: str
    prefix: str
    open: Callable[[], StaticSite]


# Sites opened by this process, kept between passes: a client and a prepared bucket (CORS, policy)
# cost more requests than the few files one checkpoint sends.
_opened: dict[tuple, StaticSite] = {}


def _cached(key: tuple, make: Callable[[], StaticSite]) -> Callable[[], StaticSite]:
    def open_site() -> StaticSite:
        if key not in _opened:
            _opened[key] = make()
        return _opened[key]
    return open_site


def log_sites(settings: Settings) -> list[LogSite]:
    """The configured destinations: S3's ``log/`` and the IPFS directory ``log`` holding ``log/``
    (so its root serves ``…/log/checkpoint``)."""
    sites: list[LogSite] = []
    if settings.s3_bucket:
        s3 = (settings.s3_bucket, settings.s3_endpoint_url, settings.s3_region)
        sites.append(LogSite("s3", "", _cached(("s3", *s3), lambda: S3Site(s3[0], LOG_SITE, s3[1], s3[2]))))
    if settings.ipfs_api:
        ipfs = (settings.ipfs_api, settings.ipfs_timeout)
        sites.append(LogSite("ipfs", f"{LOG_SITE}/",
                             _cached(("ipfs", *ipfs), lambda: IpfsSite(ipfs[0], LOG_SITE, ipfs[1]))))
    return sites


def _publish_lock(settings: Settings):
    """One publish of the log at a time (the scheduler's task and `flask log publish`)."""
    return try_lock(settings.data_dir / RECORD_DIR / "lock",
                    ProvenanceError("another publish of the log is running"))


def _checkpoint_size(data: bytes) -> int | None:
    lines = data.split(b"\n", 3)
    return int(lines[1]) if len(lines) > 2 and lines[1].isdigit() else None


def publish_log(settings: Settings) -> LogPublishReport:
    """Send each configured site what it lacks of the log directory, the checkpoint last.

    A site that fails is named in ``failures`` and keeps serving what it had (an older checkpoint
    with all its tiles); what was sent is recorded, so the next publish resumes. ProvenanceError
    while another publish runs.
    """
    started = time.monotonic()
    report = LogPublishReport()
    sites = log_sites(settings)
    if not sites:
        return report
    with _publish_lock(settings):
        record = PublishRecord(settings)
        # Tiles any site already recorded need not be hashed again: they never change.
        known: dict[str, str] = {}
        for configured in sites:
            known.update(record.get(configured.name))
        snap = snapshot(settings.log_path, known)
        report.refused = snap.refused
        if snap.checkpoint is None:
            return report  # nothing signed yet: nothing a reader could check
        report.size = _checkpoint_size(snap.checkpoint.data)  # type: ignore[arg-type]
        for configured in sites:
            site_report = SiteReport(configured.name)
            report.sites.append(site_report)
            sent = report.sent.setdefault(configured.name, [])
            held = record.get(configured.name)
            try:
                pinned = _publish_site(configured, snap, held, site_report, sent)
                if configured.name == "ipfs":
                    report.root_cid = pinned or record.last.get("ipfs_root")
            except StorageError as exc:
                report.failures.append(f"{configured.name}: {exc}")
            finally:
                record.sites[configured.name] = held
        report.seconds = time.monotonic() - started
        record.last = {
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "size": report.size, "checkpoint": snap.checkpoint.sha256,
            "failures": report.failures, "refused": report.refused,
            "ipfs_root": report.root_cid or record.last.get("ipfs_root"),
        }
        record.save()
    return report


def _publish_site(configured: LogSite, snap: LogSnapshot, held: dict[str, str],
                  report: SiteReport, sent: list[str]) -> str | None:
    """Tiles and other files first, in batches, recording each; the checkpoint alone, last.
    Returns the IPFS root pinned, if any."""
    checkpoint = snap.checkpoint
    assert checkpoint is not None
    changed = [f for f in snap.files if held.get(f.path) != f.sha256]
    if not changed and held.get(CHECKPOINT_PATH) == checkpoint.sha256:
        return None  # nothing to send: the site is not even opened
    site, prefix = configured.open(), configured.prefix
    for start in range(0, len(changed), PUT_BATCH):
        batch = changed[start:start + PUT_BATCH]
        site.put([f.site_file(prefix) for f in batch], report)
        for f in batch:
            held[f.path] = f.sha256
            sent.append(f.path)
    if held.get(CHECKPOINT_PATH) != checkpoint.sha256:
        site.put([checkpoint.site_file(prefix)], report)
        held[CHECKPOINT_PATH] = checkpoint.sha256
        sent.append(CHECKPOINT_PATH)
    return site.pin_root() if isinstance(site, IpfsSite) else None


def publish_state(settings: Settings) -> dict:
    """The last publish's result and whether every site holds the log's current checkpoint."""
    record = PublishRecord(settings)
    sites = [s.name for s in log_sites(settings)]
    try:
        current = hashlib.sha256((settings.log_path / CHECKPOINT_PATH).read_bytes()).hexdigest()
    except OSError:
        current = None
    behind = [name for name in sites
              if current is not None and record.get(name).get(CHECKPOINT_PATH) != current]
    return {"sites": sites, "last": record.last, "behind": behind}
