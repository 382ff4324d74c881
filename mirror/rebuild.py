"""The database is an index: what it holds that matters can be rebuilt from S3.

Two kinds of objects in the bucket make that possible (docs/rebuild.md):

* **Manifests** (``blobs/sha256/<hex>``, one per stored capture, immutable): the capture's URL,
  time, HTTP facts, every part's sha256, size and CID, and (format 2) the source's attributes at
  capture time. An empty marker ``index/manifests/<hex>`` names each one, so they are found by
  listing instead of reading every blob.
* **Index state** (``index/state/<UTC time>-<sha256>.json.gz``, written by the scheduler shortly
  after the database changes, the newest few kept): what changes after a capture and exists
  nowhere else: the sources as they are now (paused, deleted, edited), the collections, and every
  fragment an archivist touched (decision, reviewer, edit, tags), with enough of it to recreate
  the fragment even if splitting changed since.

A rebuild reads both, verifies every object against its sha256 (the manifest's key, the state's
name, each part before it enters the spool), recreates sources, captures, parts and replica rows,
re-splits each page (splitting is deterministic: fragment ids come from the URL and the text) and
lays the recorded decisions over the result. Failed attempts, unchanged checks, jobs and accounts
are not restored. Nothing here knows Flask.
"""

from __future__ import annotations

import gzip
import json
import logging
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from accounts.audit import Actor, record as audit
from fragments.models import APPROVED, PENDING, REJECTED, Collection, Fragment, FragmentTag
from fragments.split import normalize_text
from mirror.models import Capture, CapturePart, Replica, Source
from mirror.pipeline import OK, _split
from mirror.partnames import MANIFEST_NAME, is_part_name
from mirror.replicas import (
    MANIFEST_MARKER_PREFIX,
    PENDING as REPLICA_PENDING,
    STORED,
    remote_backends,
)
from mirror.sources import CAPTURE_MODES, DEFAULT_CAPTURE_MODE
from mirror.storage import S3Store, sha256_hex
from mirror.storage.s3 import KEY_PREFIX
from samizdat.db import utcnow
from samizdat.errors import SamizdatError, StorageError
from samizdat.runtime import Runtime
from samizdat.tasks import Debounce, PeriodicTask

log = logging.getLogger(__name__)

STATE_PREFIX = "index/state/"
STATE_FORMAT = 1
MANIFEST_FORMATS = (1, 2)
# Older records stay as a short history: a bad write (or a bad day) is never the only copy.
KEEP_STATES = 20
# An index state never inflates past this. A constant, not a setting: an honest record is about
# 70 bytes per capture and 1 KB per curated fragment, so even a million captures with a hundred
# thousand curated fragments stay near 170 MB. A bomb is refused at this bound.
MAX_STATE_BYTES = 256 * 2**20
_CHUNK = 2**20
_STATE_KEY = re.compile(r"^index/state/(\d{8}T\d{6}\d{6}Z)-([0-9a-f]{64})\.json\.gz$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class RebuildError(SamizdatError):
    """A rebuild that cannot start or read anything: one line for the operator."""


# --- Writing the index state ----------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def index_state(session: Session) -> dict:
    """What the database holds that no manifest does, as one JSON-ready record."""
    sources = [
        {
            "url": s.url,
            "country": s.country,
            "collection": s.collection,
            "interval_minutes": s.interval_minutes,
            "category_code": s.category_code,
            "category_description": s.category_description,
            "active": s.active,
            "capture_mode": s.capture_mode,
            "created_at": _iso(s.created_at),
            "deleted_at": _iso(s.deleted_at),
        }
        for s in session.scalars(select(Source).order_by(Source.url))
    ]
    # Every manifest the database knows: the way to them for captures made before their markers.
    manifests = sorted(
        session.scalars(select(CapturePart.sha256).where(CapturePart.role == "manifest").distinct())
    )
    collections = [
        {"name": c.name, "auto_approve": c.auto_approve, "created_at": _iso(c.created_at)}
        for c in session.scalars(select(Collection).order_by(Collection.name))
    ]
    tags: dict[str, list[str]] = {}
    for fragment_id, tag in session.execute(
        select(FragmentTag.fragment_id, FragmentTag.tag).order_by(FragmentTag.fragment_id, FragmentTag.tag)
    ):
        tags.setdefault(fragment_id, []).append(tag)
    # Pending, unedited, untagged fragments come back from re-splitting; only the touched ones
    # need recording, with everything needed to recreate them without a re-split.
    tagged = select(FragmentTag.fragment_id)
    touched = (Fragment.status != PENDING) | Fragment.original_text.is_not(None) | Fragment.id.in_(tagged)
    fragments = [
        {
            "id": f.id,
            "source_url": f.source_url,
            "sha256": f.sha256,
            "fetched_at": _iso(f.fetched_at),
            "position": f.position,
            "text": f.text,
            "original_text": f.original_text,
            "language": f.language,
            "status": f.status,
            "title": f.title,
            "site_name": f.site_name,
            "country": f.country,
            "collection": f.collection,
            "category_code": f.category_code,
            "created_at": _iso(f.created_at),
            "edited_by": f.edited_by,
            "edited_at": _iso(f.edited_at),
            "reviewed_by": f.reviewed_by,
            "reviewed_at": _iso(f.reviewed_at),
            "tags": tags.get(f.id, []),
        }
        for f in session.scalars(select(Fragment).where(touched).order_by(Fragment.id))
    ]
    return {
        "samizdat_index_state": STATE_FORMAT,
        "sources": sources,
        "manifests": manifests,
        "collections": collections,
        "fragments": fragments,
    }


def encode_state(record: dict) -> bytes:
    """The record as stored: canonical JSON, gzipped without a timestamp (same record, same bytes)."""
    return gzip.compress(json.dumps(record, sort_keys=True, separators=(",", ":")).encode(), mtime=0)


def _s3(runtime: Runtime) -> S3Store:
    store = runtime.stores.get("s3")
    if not isinstance(store, S3Store):
        raise RebuildError("S3 is not configured (SAMIZDAT_S3_BUCKET): there is no index to rebuild from")
    return store


def _state_keys(s3: S3Store) -> list[str]:
    """The index state records in the bucket, newest first (their names sort by time)."""
    return sorted((key for key, _size in s3.list_keys(STATE_PREFIX) if _STATE_KEY.match(key)), reverse=True)


def _read_state(s3: S3Store, key: str) -> dict:
    """One index state record, verified against the sha256 in its name; StorageError if not."""
    data = s3.get(key)
    expected = _STATE_KEY.match(key).group(2)
    if sha256_hex(data) != expected:
        raise StorageError(f"{key} does not match its sha256 (corrupt or truncated)")
    try:
        record = json.loads(_gunzip_bounded(data, MAX_STATE_BYTES))
    except (OSError, EOFError, ValueError, zlib.error) as exc:
        raise StorageError(f"{key} is not a gzipped JSON record: {exc}") from None
    if not isinstance(record, dict) or record.get("samizdat_index_state") != STATE_FORMAT:
        raise StorageError(f"{key} is not an index state record of format {STATE_FORMAT}")
    return record


def _gunzip(data: bytes, keep: bool, limit: int) -> list[bytes]:
    """One pass over a single gzip member, at most 1 MiB of output at a time; the chunks if
    ``keep``. ValueError once the output passes ``limit`` or the member is cut short."""
    inflater = zlib.decompressobj(wbits=31)  # 31: a gzip header and trailer
    chunks: list[bytes] = []
    total = 0
    pending = data
    while True:
        chunk = inflater.decompress(pending, _CHUNK)
        total += len(chunk)
        if total > limit:
            raise ValueError(f"it inflates to more than {limit // 2**20} MiB (refused unread)")
        if keep:
            chunks.append(chunk)
        pending = inflater.unconsumed_tail
        if not pending and not chunk:
            break
    if not inflater.eof:
        raise ValueError("the gzip stream is truncated")
    return chunks


def _gunzip_bounded(data: bytes, limit: int) -> bytes:
    """``data`` decompressed, refused (ValueError) past ``limit`` bytes before any is kept.

    A first pass only counts, in constant memory, so a decompression bomb costs a few MB and
    some CPU, never its inflated size; an honest record is then inflated for real.
    """
    _gunzip(data, False, limit)
    return b"".join(_gunzip(data, True, limit))


def save_index_state(runtime: Runtime, data: bytes | None = None) -> str | None:
    """Write the database's index state to S3 unless the newest record already holds it.

    Returns the key written, or None. Refuses (RebuildError) when the newest record names a
    source or a curated fragment the database lacks: neither is ever removed (deleting a source
    only hides it), so that is an empty or partial database (a lost server not rebuilt yet, or
    half-way), and writing it would bury the record a rebuild needs.
    """
    s3 = _s3(runtime)
    if data is None:
        with runtime.Session() as session:
            data = encode_state(index_state(session))
    record = json.loads(gzip.decompress(data))
    digest = sha256_hex(data)
    # A new archive's bucket may not exist yet (no capture stored): check() creates it.
    health = s3.check()
    if not health.ok:
        raise StorageError(health.detail)
    keys = _state_keys(s3)
    if keys:
        if keys[0].endswith(f"-{digest}.json.gz"):
            return None
        try:
            newest = _read_state(s3, keys[0])
        except StorageError as exc:
            log.warning("index state %s unreadable, writing a new one: %s", keys[0], exc)
            newest = {}
        known = {s["url"] for s in record["sources"]}
        forgotten = {s.get("url") for s in newest.get("sources", ()) if isinstance(s, dict)} - known
        missing = _missing_fragments(runtime, newest, record)
        if forgotten or missing:
            lacks = f"{len(forgotten)} sources" if forgotten else f"{missing} curated fragments"
            raise RebuildError(
                f"the database lacks {lacks} that {keys[0]} holds: run `flask mirror "
                "rebuild-index` (with --merge) before the index state is saved again"
            )
    elif not record["sources"]:
        return None  # nothing worth a record yet
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    key = f"{STATE_PREFIX}{stamp}-{digest}.json.gz"
    s3.put_named(key, data)
    for old in keys[KEEP_STATES - 1 :]:
        s3.delete_named(old)
    return key


def _missing_fragments(runtime: Runtime, newest: dict, record: dict) -> int:
    """How many fragments the newest saved record holds that the database has no row for.

    Fragments are never deleted, so any such is a database still being rebuilt (its sources are
    all there, its captures not yet): a record saved now would lose their decisions.
    """
    ids = {f.get("id") for f in newest.get("fragments", ()) if isinstance(f, dict)}
    ids -= {f["id"] for f in record["fragments"]}
    ids = sorted(i for i in ids if isinstance(i, str))
    found = 0
    with runtime.Session() as session:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            found += session.scalar(select(func.count()).select_from(Fragment).where(Fragment.id.in_(chunk)))
    return len(ids) - found


class IndexStateWriter:
    """Saves the index state once it has changed and then held still (a periodic task)."""

    def __init__(self, quiet: float = 30.0, max_delay: float = 300.0):
        self.debounce = Debounce(quiet, max_delay)
        self.saved: str | None = None  # sha256 of what was last saved (or found saved)

    def __call__(self, runtime: Runtime) -> bool:
        """Check once; save if due. Returns whether a record was written."""
        if "s3" not in runtime.stores:
            return False
        with runtime.Session() as session:
            data = encode_state(index_state(session))
        current = sha256_hex(data)
        # Never saved in this process: save (or find it saved) at once, with no quiet period.
        if self.saved is not None and not self.debounce.due(current, self.saved, time.monotonic()):
            return False
        try:
            key = save_index_state(runtime, data)
        except (StorageError, RebuildError) as exc:
            log.warning("index state not saved: %s", exc)
            return False
        self.saved = current
        self.debounce.reset()
        if key:
            log.info("index state saved to %s", key)
        return key is not None


def periodic_tasks(check_seconds: float = 30.0) -> list[PeriodicTask]:
    """Mirror's contribution to the scheduler's declared tasks: keep the index state saved."""
    return [PeriodicTask("mirror.save-index-state", IndexStateWriter(), check_seconds)]


# --- Reading it back ------------------------------------------------------------------------------


@dataclass
class ManifestEntry:
    """One verified manifest: its sha256, its size and what it says."""

    sha256: str
    size: int
    body: dict

    @property
    def fetched_at(self) -> datetime:
        """When the capture was fetched."""
        return _parse_time(self.body["fetched_at"])


@dataclass
class RebuildPlan:
    """What the bucket offers: the newest readable index state and the manifests to read."""

    state: dict | None
    state_key: str | None
    manifest_shas: list[str]
    blobs: dict[str, int]  # sha256 → size of every blob in S3
    problems: list[str] = field(default_factory=list)


@dataclass
class RebuildReport:
    """What a rebuild restored (or, dry, would restore), and what it skipped with the reasons."""

    sources: int = 0
    captures: int = 0
    fragments: int = 0
    approved: int = 0
    rejected: int = 0
    edited: int = 0
    fetched_files: int = 0
    manifests_read: int = 0
    problems: list[str] = field(default_factory=list)
    # (fragment id, why): recorded decisions the verified captures do not bear out.
    pending_again: list[tuple[str, str]] = field(default_factory=list)
    # The provenance log read back: what it held and matched (provenance.restore), and notes.
    log_summary: str = ""
    log_decisions: int = 0
    notes: list[str] = field(default_factory=list)

    def summary(self, dry_run: bool = False) -> str:
        """One line for the operator."""
        verb = "would restore" if dry_run else "restored"
        fragments = "" if dry_run else f"{self.fragments} fragments ("
        return (
            f"{verb} {self.sources} sources, {self.captures} captures, {fragments}"
            f"{self.approved} approved, {self.rejected} rejected, {self.edited} edited"
            f"{'' if dry_run else ')'}; {self.fetched_files} files "
            f"{'to fetch' if dry_run else 'fetched'} back to the spool; "
            f"{len(self.problems)} problems skipped"
            + (f"; {len(self.pending_again)} recorded decisions not verified, pending again"
               if self.pending_again else "")
            + (f"; {self.log_summary}" if self.log_summary else "")
        )


def _parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def plan_rebuild(runtime: Runtime) -> RebuildPlan:
    """List the bucket: the newest index state that verifies, every manifest, every blob.

    RebuildError when S3 is off or cannot be listed (one line: unreachable, refused…).
    """
    s3 = _s3(runtime)
    problems: list[str] = []
    try:
        blobs = {key[len(KEY_PREFIX) :]: size for key, size in s3.list_keys(KEY_PREFIX)}
        markers = [key[len(MANIFEST_MARKER_PREFIX) :] for key, _ in s3.list_keys(MANIFEST_MARKER_PREFIX)]
        state_keys = _state_keys(s3)
    except StorageError as exc:
        raise RebuildError(f"cannot list bucket {s3.bucket}: {exc}") from None
    state = state_key = None
    for key in state_keys:
        try:
            state, state_key = _read_state(s3, key), key
            break
        except StorageError as exc:
            problems.append(f"index state {key}: {exc}")
    shas = set(markers) | set((state or {}).get("manifests", ()))
    bad = sorted(s for s in shas if not isinstance(s, str) or not _HEX64.match(s))
    problems += [f"manifest {s!r}: not a sha256" for s in bad]
    return RebuildPlan(state, state_key, sorted(shas - set(bad)), blobs, problems)


def read_manifest(s3: S3Store, sha256: str) -> ManifestEntry:
    """One manifest from S3, checked against its sha256 and its format; StorageError if not."""
    data = s3.get(S3Store.key_for(sha256))
    if sha256_hex(data) != sha256:
        raise StorageError("bytes do not match the sha256 they are stored under")
    try:
        body = json.loads(data)
    except ValueError:
        raise StorageError("not JSON (not a manifest)") from None
    if not isinstance(body, dict) or body.get("samizdat_manifest") not in MANIFEST_FORMATS:
        raise StorageError("not a Samizdat manifest of a known format")
    parts = body.get("parts")
    try:
        _parse_time(body["fetched_at"])
        ok = (
            isinstance(body["url"], str)
            and isinstance(body["sha256"], str)
            and isinstance(parts, list)
            and all(
                isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("role"), str)
                and isinstance(p.get("sha256"), str) and _HEX64.match(p["sha256"])
                and isinstance(p.get("size"), int)
                for p in parts
            )
            and any(p["role"] == "page" and p["sha256"] == body["sha256"] for p in parts)
        )
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise StorageError("manifest lacks a field a capture needs (url, fetched_at, sha256, parts, page)")
    names = [p["name"] for p in parts]
    for part in parts:
        # The manifest's own part is added by the rebuild, never listed in it.
        if part["role"] == "manifest" or not is_part_name(part["role"], part["name"]):
            raise StorageError(f"part name {part['name'][:80]!r} ({part['role'][:20]}) is not one "
                               "Samizdat makes: refused")
    if len(set(names)) != len(names):
        raise StorageError("two parts share a name: refused")
    return ManifestEntry(sha256, len(data), body)


def _database_is_empty(session: Session) -> bool:
    return not any(session.scalar(select(func.count()).select_from(t)) for t in (Source, Capture, Fragment))


def rebuild_index(
    runtime: Runtime,
    plan: RebuildPlan,
    merge: bool = False,
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    actor: Actor | None = None,
) -> RebuildReport:
    """Restore sources, captures, fragments and decisions from ``plan`` (see the module docstring).

    Into an empty database unless ``merge``, which adds only what is missing and changes nothing
    already there (so a rebuild that stopped half-way can be run again). ``dry_run`` reads and
    verifies everything, writes nothing. ``progress`` is called with 1 per step, two steps per
    manifest (reading it, then restoring its capture). With ``actor``, the rebuild and every
    decision it did not restore are recorded in the audit log.
    """
    with runtime.Session() as session:
        if not merge and not _database_is_empty(session):
            raise RebuildError(
                "the database is not empty: rebuild into a freshly migrated one, or pass --merge "
                "to add only what is missing"
            )
    s3 = _s3(runtime)
    report = RebuildReport(problems=list(plan.problems))
    entries: list[ManifestEntry] = []
    for sha in plan.manifest_shas:
        try:
            entries.append(read_manifest(s3, sha))
            report.manifests_read += 1
        except StorageError as exc:
            report.problems.append(f"manifest {sha[:12]}: {exc}")
            if progress:
                progress(1)  # its second step (restoring) will not come
        if progress:
            progress(1)
    state = plan.state or {}
    # Deterministic order: a fragment belongs to the first capture that produced it.
    entries.sort(key=lambda e: (e.body["url"], e.fetched_at, e.sha256))
    curated = _curated_by_capture(state, report)
    if dry_run:
        return _dry_run(runtime, plan, state, entries, curated, report, progress)

    sources = _source_records(runtime, state, entries)
    with runtime.Session() as session:
        # The state's sources now (some were never captured); the others with their first capture.
        for url, record in sorted(sources.items()):
            if not record.get("from_manifest"):
                report.sources += _get_or_create_source(runtime, session, url, record)[1]
        for record in state.get("collections", ()):
            if not isinstance(record, dict) or not isinstance(record.get("name"), str):
                report.problems.append(f"collection {str(record)[:60]}: incomplete record")
                continue
            if session.scalar(select(Collection.id).where(Collection.name == record["name"])) is None:
                session.add(Collection(name=record["name"], auto_approve=bool(record["auto_approve"]),
                                       created_at=_time_or_now(record.get("created_at"))))
        session.commit()
    restored_ids: list[int] = []
    for entry in entries:
        capture_id = _restore_capture(runtime, entry, sources, plan.blobs, curated, report)
        if capture_id is not None:
            restored_ids.append(capture_id)
        if progress:
            progress(1)
    leftover = sum(len(v) for v in curated.values())
    if leftover:
        report.problems.append(f"{leftover} curated fragments: their capture was not restored")
    with runtime.Session() as session:
        for chunk in range(0, len(restored_ids), 500):
            ids = restored_ids[chunk : chunk + 500]
            rows = session.execute(
                select(Fragment.status, Fragment.original_text.is_not(None), func.count())
                .where(Fragment.capture_id.in_(ids))
                .group_by(Fragment.status, Fragment.original_text.is_not(None))
            )
            for status, edited, count in rows:
                report.fragments += count
                report.approved += count if status == APPROVED else 0
                report.rejected += count if status == REJECTED else 0
                report.edited += count if edited else 0
    _restore_log_indexes(runtime, report)
    if actor is not None:
        _audit_rebuild(runtime, actor, plan, report, merge)
    return report


def _restore_log_indexes(runtime: Runtime, report: RebuildReport) -> None:
    """Which capture is at which index of the provenance log, read back from the log itself;
    where the log and the restored captures differ, one problem line each."""
    # Imported here: the log sits downstream of the captures it records (provenance imports
    # mirror's models), and only this last step of a rebuild looks back at it.
    from provenance.restore import restore_logged_captures

    logged = restore_logged_captures(runtime)
    report.problems += logged.problems
    report.notes += logged.notes
    report.log_summary = logged.summary()
    report.log_decisions = logged.decisions


def _audit_rebuild(runtime: Runtime, actor: Actor, plan: RebuildPlan, report: RebuildReport, merge: bool) -> None:
    """One audit entry for the rebuild, and one per fragment whose recorded decision was dropped."""
    with runtime.Session() as session:
        audit(session, actor, "archive.rebuild", "archive", None, {
            "merge": merge, "index_state": plan.state_key, "sources": report.sources,
            "captures": report.captures, "fragments": report.fragments, "approved": report.approved,
            "rejected": report.rejected, "edited": report.edited, "problems": report.problems,
            "pending_again": len(report.pending_again),
        })
        for fragment_id, reason in report.pending_again:
            audit(session, actor, "fragment.rebuild-unverified", "fragment", fragment_id, {"reason": reason})
        session.commit()


def _time_or_now(value: str | None) -> datetime:
    return _parse_time(value) if value else utcnow()


def _time_or_none(value: str | None) -> datetime | None:
    return _parse_time(value) if value else None


def _capture_key(url: str, sha256: str, fetched_at: datetime) -> tuple[str, str, str]:
    return url, sha256, fetched_at.astimezone(timezone.utc).isoformat()


# What a recorded fragment needs to be recreated (the rest may be null).
_FRAGMENT_FIELDS = {"id": str, "position": int, "text": str, "status": str, "source_url": str, "sha256": str}


def _curated_by_capture(state: dict, report: RebuildReport) -> dict[tuple, list[dict]]:
    """The state's touched fragments grouped by the capture they came from."""
    out: dict[tuple, list[dict]] = {}
    for record in state.get("fragments", ()):
        try:
            key = _capture_key(record["source_url"], record["sha256"], _parse_time(record["fetched_at"]))
            complete = all(isinstance(record[k], t) for k, t in _FRAGMENT_FIELDS.items())
        except (KeyError, TypeError, ValueError, AttributeError):
            complete = False
        if not complete:
            report.problems.append(f"curated fragment {str(record.get('id'))[:32]}: incomplete record")
            continue
        out.setdefault(key, []).append(record)
    return out


def _dry_run(runtime, plan, state, entries, curated, report, progress) -> RebuildReport:
    """Count what a rebuild would restore, and which parts it would fetch or miss."""
    local = runtime.stores["local"]
    urls = {s["url"] for s in state.get("sources", ()) if isinstance(s, dict)}
    for entry in entries:
        missing = [p for p in entry.body["parts"] if not local.exists(p["sha256"])]
        absent = [p["name"] for p in missing if p["sha256"] not in plan.blobs]
        if absent:
            report.problems.append(f"capture of {entry.body['url']} at {entry.body['fetched_at']}: "
                                   f"{absent[0]} is in neither S3 nor the spool")
        else:
            urls.add(entry.body["url"])
            report.captures += 1
            report.fetched_files += len(missing)
            for record in curated.get(_capture_key(entry.body["url"], entry.body["sha256"], entry.fetched_at), ()):
                report.approved += record.get("status") == APPROVED
                report.rejected += record.get("status") == REJECTED
                report.edited += record.get("original_text") is not None
        if progress:
            progress(1)
    report.sources = len(urls)
    return report


def _source_records(runtime, state, entries) -> dict[str, dict]:
    """Each source's attributes by URL: the state's (as it is now), else the newest manifest's."""
    records: dict[str, dict] = {}
    for entry in entries:
        # Captured after the last saved state: the newest manifest's attributes (format 2;
        # format 1 has none, so the defaults), created when its first capture is restored.
        url = entry.body["url"]
        first = records.get(url, {}).get("created_at", entry.body["fetched_at"])
        records[url] = {**(entry.body.get("source") or {}), "active": True, "created_at": first,
                        "from_manifest": True}
    for record in state.get("sources", ()):
        if isinstance(record, dict) and isinstance(record.get("url"), str):
            records[record["url"]] = record
    return records


def _get_or_create_source(runtime, session: Session, url: str, record: dict) -> tuple[Source, bool]:
    """The source with ``url``, created from ``record`` when missing; and whether it was."""
    existing = session.scalar(select(Source).where(Source.url == url))
    if existing is not None:
        return existing, False
    source = Source(
        url=url,
        country=record.get("country"),
        collection=record.get("collection"),
        interval_minutes=int(record.get("interval_minutes") or runtime.settings.default_interval_minutes),
        category_code=record.get("category_code"),
        category_description=record.get("category_description"),
        active=bool(record.get("active", True)),
        # A state saved before capture modes (or altered) gets the default, never a bad mode.
        capture_mode=record.get("capture_mode") if record.get("capture_mode") in CAPTURE_MODES
        else DEFAULT_CAPTURE_MODE,
        created_at=_time_or_now(record.get("created_at")),
        deleted_at=_time_or_none(record.get("deleted_at")),
    )
    session.add(source)
    session.flush()
    return source, True


def _fill_spool(runtime: Runtime, entry: ManifestEntry, blobs: dict[str, int]) -> int:
    """Fetch the capture's parts missing from the spool back from S3, each checked; return how
    many. StorageError naming the first part that cannot be had."""
    local, s3 = runtime.stores["local"], runtime.stores["s3"]
    fetched = 0
    wanted = [(p["name"], p["sha256"]) for p in entry.body["parts"]] + [(MANIFEST_NAME, entry.sha256)]
    for name, sha in wanted:
        if local.exists(sha):
            continue
        if sha not in blobs:
            raise StorageError(f"{name} ({sha[:12]}) is in neither S3 nor the spool")
        data = s3.get(S3Store.key_for(sha))
        if sha256_hex(data) != sha:
            raise StorageError(f"{name} ({sha[:12]}) in S3 does not match its sha256")
        local.put(data)
        fetched += 1
    return fetched


def _restore_capture(runtime, entry, sources, blobs, curated, report) -> int | None:
    """Recreate one capture, its parts, replicas and fragments in one transaction; its id."""
    body = entry.body
    where = f"capture of {body['url']} at {body['fetched_at']}"
    try:
        fetched = _fill_spool(runtime, entry, blobs)
    except StorageError as exc:
        report.problems.append(f"{where}: {exc}")
        return None
    report.fetched_files += fetched
    fetched_at = entry.fetched_at
    key = _capture_key(body["url"], body["sha256"], fetched_at)
    records = curated.pop(key, [])
    now = utcnow()
    try:
        return _restore_rows(runtime, entry, sources, blobs, records, report, now)
    except Exception as exc:  # noqa: BLE001 - one bad capture (a page the splitter chokes on,
        # a value a column refuses) must not stop the rest of the archive from coming back.
        log.exception("rebuild: %s not restored", where)
        report.problems.append(f"{where}: not restored: {type(exc).__name__}: {str(exc)[:200]}")
        return None


def _capture_method(body: dict) -> dict:
    """How a manifest says its capture was made, each value checked (a bucket may be hostile):
    an unknown method, or a reason that is not a string, is left out."""
    method = body.get("capture_method")
    if method not in ("http", "browser"):
        return {}
    reason, limit = body.get("method_reason"), body.get("limited_by")
    return {
        "capture_method": method,
        "method_reason": reason[:255] if isinstance(reason, str) else None,
        "limited_by": limit[:64] if isinstance(limit, str) else None,
    }


def _restore_rows(runtime, entry, sources, blobs, records, report, now) -> int | None:
    """The database half of _restore_capture: one transaction, rolled back on any error."""
    body = entry.body
    fetched_at = entry.fetched_at
    with runtime.Session() as session:
        source, created = _get_or_create_source(runtime, session, body["url"], sources[body["url"]])
        existing = session.scalar(
            select(Capture.id).where(Capture.source_id == source.id, Capture.sha256 == body["sha256"],
                                     Capture.fetched_at == fetched_at, Capture.status == OK)
        )
        if existing is not None:
            return None  # --merge: already there, left as it is
        page = next(p for p in body["parts"] if p["role"] == "page")
        parts = [
            CapturePart(role=p["role"], name=p["name"], sha256=p["sha256"], size=p["size"],
                        content_type=p.get("content_type"))
            for p in body["parts"]
        ]
        parts.append(CapturePart(role="manifest", name=MANIFEST_NAME, sha256=entry.sha256,
                                 size=entry.size, content_type="application/json"))
        capture = Capture(
            source=source, status=OK, url=body["url"], final_url=body.get("final_url"),
            http_status=body.get("http_status"), content_type=body.get("content_type"),
            charset=body.get("charset"), title=body.get("title"), sha256=body["sha256"],
            size=page["size"], local_key=body["sha256"], fetched_at=fetched_at,
            **_capture_method(body),
            # Processed: its offline copy is among the parts and its fragments are made below.
            # Not complete: reconcile re-verifies the replicas and rebuilds the IPFS directory.
            complete=False, split_at=now, processed_at=now, parts=parts,
        )
        session.add(capture)
        session.flush()
        _restore_replicas(runtime, session, parts, blobs, now)
        # The verified page is split first: a recorded decision is laid only over text it holds.
        _split(runtime, session, capture, runtime.stores["local"].get(body["sha256"]))
        session.flush()
        _restore_curated(session, capture, records, report)
        session.commit()
        report.captures += 1
        report.sources += created
        return capture.id


def _restore_replicas(runtime, session, parts, blobs, now) -> None:
    """A replica row per part and back-end: stored where S3 lists the blob, else pending."""
    for sha, size in {p.sha256: p.size for p in parts}.items():
        for backend in remote_backends(runtime):
            if session.scalar(select(Replica.id).where(Replica.sha256 == sha, Replica.backend == backend)):
                continue
            in_s3 = backend == "s3" and blobs.get(sha) == size
            # IPFS is pending: reconcile adds the spool's bytes again (same CID) and pins them
            # on whatever node this server now talks to.
            session.add(Replica(
                sha256=sha, backend=backend, state=STORED if in_s3 else REPLICA_PENDING, size=size,
                attempts=0, locator=S3Store.key_for(sha) if in_s3 else None,
                stored_at=now if in_s3 else None, created_at=now,
            ))


def _restore_curated(session: Session, capture: Capture, records: list[dict], report: RebuildReport) -> None:
    """Lay the recorded decisions over the capture's re-split fragments, verified.

    The index state comes from a bucket that may be hostile: a decision (or an edit) is restored
    only for a fragment whose text (an edit's original text) the verified capture holds. Any
    other record comes back pending, unreviewed, and is listed in ``report.pending_again``.
    """
    split = {f.id: f for f in session.scalars(select(Fragment).where(Fragment.capture_id == capture.id))}
    # The capture's text as the splitter reads it now: an honest record made by an older splitter
    # (other boundaries, so another id) is still found in it.
    captured = normalize_text(" ".join(f.text for f in sorted(split.values(), key=lambda f: f.position)))
    sibling = next(iter(split.values()), None)
    for record in records:
        original = record.get("original_text")
        shown = original if isinstance(original, str) else record["text"]
        fragment = split.get(record["id"])
        if record["status"] not in (APPROVED, REJECTED, PENDING):
            reason = f"unknown status {record['status'][:16]!r}"
        elif original is not None and not isinstance(original, str):
            reason = "its original text is not text"
        elif fragment is not None:
            reason = None if normalize_text(fragment.text) == normalize_text(shown) else \
                "its text differs from the fragment the capture holds under that id"
        elif session.get(Fragment, record["id"]) is not None:
            reason = "its id belongs to another capture's fragment"
            fragment = None
        elif sibling is None or not normalize_text(shown) or normalize_text(shown) not in captured:
            reason = "the capture does not hold its text" + (" (the edit's original)" if original else "")
        else:
            reason = None
        if reason is None:
            fragment = fragment or _recreate(session, capture, record, sibling)
            _apply_decision(session, fragment, record)
            continue
        report.pending_again.append((record["id"], reason))
        if fragment is None and session.get(Fragment, record["id"]) is None:
            # Kept for an archivist to judge, as a fragment no one has reviewed.
            _recreate(session, capture, record, sibling)


def _recreate(session: Session, capture: Capture, record: dict, sibling: Fragment | None) -> Fragment:
    """A pending fragment of ``capture`` with the record's id and text (and its edit's original);
    its attribution is the capture's (a sibling's), never the record's."""
    like = sibling
    fragment = Fragment(
        id=record["id"], capture_id=capture.id, position=record["position"], text=record["text"],
        original_text=record.get("original_text") if isinstance(record.get("original_text"), str) else None,
        language=record.get("language") if isinstance(record.get("language"), str) else None,
        status=PENDING, source_url=capture.url, sha256=capture.sha256, cid=capture.cid,
        fetched_at=capture.fetched_at, created_at=_time_or_now(record.get("created_at")),
        title=like.title if like else capture.title, site_name=like.site_name if like else None,
        country=like.country if like else capture.source.country,
        collection=like.collection if like else capture.source.collection,
        category_code=like.category_code if like else capture.source.category_code,
    )
    session.add(fragment)
    session.flush()
    return fragment


def _apply_decision(session: Session, fragment: Fragment, record: dict) -> None:
    """Give a verified fragment its recorded decision, edit and tags."""
    fragment.status = record["status"]
    fragment.reviewed_by = record.get("reviewed_by")
    fragment.reviewed_at = _time_or_none(record.get("reviewed_at"))
    if isinstance(record.get("original_text"), str):
        fragment.original_text = record["original_text"]
        fragment.text = record["text"]
        fragment.edited_by = record.get("edited_by")
        fragment.edited_at = _time_or_none(record.get("edited_at"))
    fragment.created_at = _time_or_now(record.get("created_at"))
    have = set(session.scalars(select(FragmentTag.tag).where(FragmentTag.fragment_id == fragment.id)))
    for tag in record.get("tags", ()):
        if isinstance(tag, str) and tag not in have:
            have.add(tag)
            session.add(FragmentTag(fragment_id=fragment.id, tag=tag))
