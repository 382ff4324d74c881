"""Durable replicas: every blob goes to the local spool first, then to each remote back-end.

Each (blob, back-end) pair has a Replica row: pending until stored, failed with the reason and a
backoff when a back-end is down, stored once the bytes were written *and read back with the same
sha256*. The reconcile job retries what is due and finishes captures whose replicas are all in
place (manifest, IPFS directory). Nothing is lost while a store is down: the spool keeps the bytes.

A back-end configured after captures were made (IPFS turned on later) is filled the same way:
reconcile first gives every blob a replica row in each configured back-end that has none, so
the older captures are copied from the spool like any pending replica.

A store can also lose what it had (a bucket emptied, an S3 server restarted without its data, an
IPFS repository replaced): the verification sweep asks each back-end whether the replicas recorded
as stored are still there, and a lost one becomes failed and due, so reconcile pushes it again from
the spool.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fragments.store import set_capture_cid
from mirror.models import Capture, CapturePart, Replica
from mirror.partnames import MANIFEST_NAME
from mirror.storage import BackendDownError, BlobStore, IpfsStore, S3Store, StoredBlob, sha256_hex
from mirror.warc import page_hops
from samizdat.db import utcnow
from samizdat.errors import StorageError, StorageUnavailableError
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

PENDING, STORED, FAILED = "pending", "stored", "failed"
# An empty object per manifest in S3, named by its sha256: manifests are blobs like any other,
# and these keys let `flask mirror rebuild-index` find them without reading every blob.
MANIFEST_MARKER_PREFIX = "index/manifests/"


def mark_manifest(s3: S3Store, sha256: str) -> None:
    """Record in S3 that the blob ``sha256`` is a capture's manifest (see mirror/rebuild.py)."""
    s3.put_named(MANIFEST_MARKER_PREFIX + sha256, b"")


@dataclass
class ReplicationReport:
    """What one replication pass did."""

    stored: int = 0
    failed: int = 0
    backfilled: int = 0  # replica rows added for a back-end configured after the blob was stored
    uploaded_bytes: int = 0
    completed_captures: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def remote_backends(runtime: Runtime) -> list[str]:
    """The configured back-ends other than the local spool."""
    return [name for name in runtime.stores if name != "local"]


def ensure_replicas(session: Session, runtime: Runtime, sha256: str, size: int) -> None:
    """Make sure a Replica row exists for ``sha256`` in every remote back-end (caller commits)."""
    for backend in remote_backends(runtime):
        exists = session.scalar(
            select(Replica.id).where(Replica.sha256 == sha256, Replica.backend == backend)
        )
        if exists:
            continue
        try:
            # A savepoint, because another capture thread may add the same blob at the same time.
            with session.begin_nested():
                session.add(
                    Replica(sha256=sha256, backend=backend, state=PENDING, size=size, attempts=0)
                )
        except IntegrityError:
            pass


def _backoff(runtime: Runtime, attempts: int) -> timedelta:
    s = runtime.settings
    delay = min(s.replica_retry_seconds * (2 ** max(0, attempts - 1)), s.replica_retry_max_seconds)
    return timedelta(seconds=delay)


def _copy_and_verify(runtime: Runtime, sha256: str, backend: str) -> StoredBlob:
    """Copy one blob from the spool to ``backend`` and read it back; no database involved."""
    store = runtime.stores[backend]
    data = runtime.stores["local"].get(sha256)
    if sha256_hex(data) != sha256:
        raise StorageError(f"spool copy of {sha256} is corrupt")
    blob = store.put(data)
    if sha256_hex(store.get(blob.locator)) != sha256:
        raise StorageError(f"{backend} returned different bytes for {blob.locator}")
    return blob


def push_replicas(runtime: Runtime, replica_ids: list[int], report: ReplicationReport,
                  progress: Callable[[int, int], None] | None = None) -> None:
    """Push each replica and record the result; ``progress(done, total)`` after each one.

    The network work happens outside any transaction and each result is written in its own
    short one, so a slow back-end never holds a database lock (SQLite has only one writer).
    """
    for done, replica_id in enumerate(replica_ids, 1):
        if progress is not None:
            progress(done, len(replica_ids))
        with runtime.Session() as session:
            replica = session.get(Replica, replica_id)
            if replica is None or replica.state == STORED:
                continue
            sha256, backend = replica.sha256, replica.backend
        try:
            blob, error = _copy_and_verify(runtime, sha256, backend), None
        except StorageError as exc:
            blob, error = None, exc
        # A back-end whose breaker is open was not even called: that is no attempt, and must
        # not lengthen the backoff it will get once it answers again.
        tried = not isinstance(error, BackendDownError)
        with runtime.Session() as session:
            replica = session.get(Replica, replica_id)
            replica.attempts += 1 if tried else 0
            if error is not None:
                replica.state = FAILED
                replica.last_error = str(error)[:2000]
                replica.next_attempt_at = utcnow() + _backoff(runtime, replica.attempts)
                report.failed += 1
                report.errors.append(f"{backend}: {error}")
                if tried:
                    log.warning("replica %s in %s failed: %s", sha256[:12], backend, error)
            else:
                now = utcnow()
                replica.state = STORED
                replica.locator = blob.locator
                replica.last_error = None
                replica.next_attempt_at = None
                replica.stored_at = now
                replica.verified_at = now
                report.stored += 1
                if blob.uploaded:
                    report.uploaded_bytes += blob.size
            session.commit()


def _replicas_by_backend(session: Session, sha256s: set[str]) -> dict[tuple[str, str], Replica]:
    if not sha256s:
        return {}
    rows = session.scalars(select(Replica).where(Replica.sha256.in_(sha256s)))
    return {(r.sha256, r.backend): r for r in rows}


def build_manifest(
    capture: Capture, parts: list[CapturePart], cids: dict[str, str], spool: BlobStore
) -> bytes:
    """The capture's manifest.json: where it came from (every hop from the source URL to the
    final URL, as its WARC in ``spool`` records them), the sha256 (and CID) of every part, and
    the source's attributes at capture time (format 2), so the database can be rebuilt from it."""
    warc = next((p for p in parts if p.role == "warc"), None)
    source = capture.source
    manifest = {
        # Format 2 only adds keys ("title", "source") to format 1: readers of 1 still work.
        "samizdat_manifest": 2,
        "url": capture.url,
        "title": capture.title,
        "source": {
            "country": source.country,
            "collection": source.collection,
            "category_code": source.category_code,
            "category_description": source.category_description,
            "interval_minutes": source.interval_minutes,
        },
        "final_url": capture.final_url,
        "fetched_at": capture.fetched_at.isoformat(),
        "http_status": capture.http_status,
        "content_type": capture.content_type,
        "charset": capture.charset,
        "sha256": capture.sha256,
        # How it was captured (http or browser, why, and the limit it ended at): optional keys
        # of format 2, absent from manifests written before browser capture.
        "capture_method": capture.capture_method,
        "method_reason": capture.method_reason,
        "limited_by": capture.limited_by,
        "hops": page_hops(spool.get(warc.sha256)) if warc is not None else [],
        "parts": [
            {
                "name": p.name,
                "role": p.role,
                "sha256": p.sha256,
                "size": p.size,
                "content_type": p.content_type,
                "cid": cids.get(p.sha256),
            }
            for p in parts
            if p.role != "manifest"
        ],
    }
    return json.dumps(manifest, indent=2, sort_keys=True).encode()


def _pending_ids(session: Session, sha256s: set[str], backends: list[str]) -> list[int]:
    """Replicas of these blobs never tried yet (failed ones wait for their backoff)."""
    if not sha256s:
        return []
    return list(
        session.scalars(
            select(Replica.id).where(
                Replica.sha256.in_(sha256s), Replica.backend.in_(backends), Replica.state == PENDING
            )
        )
    )


def _all_stored(replicas: dict[tuple[str, str], Replica], sha256s: list[str], backend: str) -> bool:
    return all(
        (sha, backend) in replicas and replicas[(sha, backend)].state == STORED for sha in sha256s
    )


_FINALIZE_LOCKS = [threading.Lock() for _ in range(64)]


def finalize_capture(runtime: Runtime, capture_id: int, report: ReplicationReport) -> bool:
    """Write the manifest and IPFS directory once every part is everywhere; mark it complete.

    Returns whether the capture is complete. Safe to call repeatedly; network work happens
    between short transactions.
    """
    # The processing and reconcile jobs run in one scheduler process and may reach the same
    # capture at once; a striped lock keeps them from finishing it twice.
    with _FINALIZE_LOCKS[capture_id % len(_FINALIZE_LOCKS)]:
        return _finalize(runtime, capture_id, report)


def _finalize(runtime: Runtime, capture_id: int, report: ReplicationReport) -> bool:
    backends = remote_backends(runtime)
    ipfs_on = "ipfs" in backends
    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        if capture.complete:
            return True
        if capture.processed_at is None:
            # Its fragments and offline copy are not committed yet: a manifest or IPFS directory
            # written now would leave the offline copy out for good.
            return False
        content = [p for p in capture.parts if p.role != "manifest"]
        has_manifest = any(p.role == "manifest" for p in capture.parts)
        replicas = _replicas_by_backend(session, {p.sha256 for p in content})
        # The manifest lists every part's CID, so it waits until IPFS has them all.
        if not has_manifest and (not ipfs_on or _all_stored(replicas, [p.sha256 for p in content], "ipfs")):
            cids = {p.sha256: replicas[(p.sha256, "ipfs")].locator for p in content} if ipfs_on else {}
            data = build_manifest(capture, content, cids, runtime.stores["local"])
            try:
                runtime.stores["local"].put(data)
            except StorageError as exc:
                report.errors.append(f"local: {exc}")
                return False
            part = CapturePart(
                role="manifest",
                name=MANIFEST_NAME,
                sha256=sha256_hex(data),
                size=len(data),
                content_type="application/json",
            )
            capture.parts.append(part)
            try:
                # Flushed on its own, so a manifest written meanwhile by another process (the CLI
                # and the scheduler can finish the same capture) is noticed, not half-written.
                session.flush()
            except IntegrityError:
                session.rollback()
                return False
            ensure_replicas(session, runtime, part.sha256, part.size)
            has_manifest = True
        session.commit()
        if not has_manifest:
            return False
        pending = _pending_ids(session, {p.sha256 for p in capture.parts}, backends)
    push_replicas(runtime, pending, report)

    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        shas = [p.sha256 for p in capture.parts]
        replicas = _replicas_by_backend(session, set(shas))
        page = next((p for p in capture.parts if p.role == "page"), None)
        manifest = next((p for p in capture.parts if p.role == "manifest"), None)
        s3_key = None
        s3_done = "s3" in backends and _all_stored(replicas, shas, "s3")
        if page is not None and manifest is not None and capture.s3_key is None and s3_done:
            s3_key = replicas[(page.sha256, "s3")].locator
        entries = None
        # The IPFS directory is built as soon as IPFS has every part, even if S3 is still behind.
        if ipfs_on and capture.cid is None and _all_stored(replicas, shas, "ipfs"):
            entries = {p.name: replicas[(p.sha256, "ipfs")].locator for p in capture.parts}
        session.commit()
    if s3_key is not None:
        # The marker first, then s3_key: a capture whose marker failed is tried again.
        try:
            mark_manifest(runtime.stores["s3"], manifest.sha256)
        except StorageError as exc:
            report.errors.append(f"s3: {exc}")
            return False
        with runtime.Session() as session:
            session.get(Capture, capture_id).s3_key = s3_key
            session.commit()
    if entries is not None:
        store: IpfsStore = runtime.stores["ipfs"]
        try:
            cid = store.make_directory(entries)
        except StorageError as exc:
            report.errors.append(f"ipfs: {exc}")
            return False
        with runtime.Session() as session:
            session.get(Capture, capture_id).cid = cid
            set_capture_cid(session, capture_id, cid)
            session.commit()

    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        shas = [p.sha256 for p in capture.parts]
        replicas = _replicas_by_backend(session, set(shas))
        if not all(_all_stored(replicas, shas, b) for b in backends) or (ipfs_on and capture.cid is None):
            return False
        capture.complete = True
        session.commit()
    report.completed_captures.append(capture_id)
    return True


def replicate_capture(runtime: Runtime, capture_id: int) -> ReplicationReport:
    """Push every untried replica of a fresh capture now, then try to finalize it."""
    report = ReplicationReport()
    with runtime.Session() as session:
        capture = session.get(Capture, capture_id)
        pending = _pending_ids(session, {p.sha256 for p in capture.parts}, remote_backends(runtime))
    push_replicas(runtime, pending, report)
    finalize_capture(runtime, capture_id, report)
    return report


def _not_stored_in(backend: str):
    """SQL: the capture part's blob has no stored replica in ``backend``."""
    return ~select(Replica.id).where(
        Replica.sha256 == CapturePart.sha256, Replica.backend == backend, Replica.state == STORED
    ).exists()


def captures_missing_from(session: Session, backend: str) -> int:
    """How many successful captures have a part not (yet) stored in ``backend`` (doctor's backlog)."""
    return session.scalar(
        select(func.count(CapturePart.capture_id.distinct()))
        .join(Capture, Capture.id == CapturePart.capture_id)
        .where(Capture.status == "ok", _not_stored_in(backend))
    ) or 0


def backfill_replicas(runtime: Runtime, report: ReplicationReport, batch: int = 500) -> None:
    """Give every captured blob a pending replica in each configured back-end that has no row for
    it (the back-end was configured after the capture), and mark its captures incomplete, so
    reconcile copies them from the spool and finishes them (S3 marker, IPFS directory)."""
    for backend in remote_backends(runtime):
        no_row = ~select(Replica.id).where(Replica.sha256 == CapturePart.sha256, Replica.backend == backend).exists()
        with runtime.Session() as session:
            missing = session.execute(
                select(CapturePart.sha256, func.max(CapturePart.size))
                .join(Capture, Capture.id == CapturePart.capture_id)
                .where(Capture.status == "ok", no_row)
                .group_by(CapturePart.sha256)
            ).all()
        for start in range(0, len(missing), batch):
            chunk = missing[start:start + batch]
            with runtime.Session() as session:
                now = utcnow()
                # Due at once, like a replica found lost: the processing job never claims these.
                session.add_all(Replica(sha256=sha, backend=backend, state=PENDING, size=size, attempts=1,
                                        next_attempt_at=now, created_at=now) for sha, size in chunk)
                session.execute(
                    update(Capture)
                    .where(Capture.id.in_(select(CapturePart.capture_id)
                                          .where(CapturePart.sha256.in_([sha for sha, _ in chunk]))))
                    .values(complete=False)
                    .execution_options(synchronize_session=False)
                )
                try:
                    session.commit()
                except IntegrityError:
                    # A capture being processed added some of these rows meanwhile: the next pass
                    # picks up the rest.
                    session.rollback()
                    continue
            report.backfilled += len(chunk)
        if missing:
            log.info("reconcile: %d blobs of earlier captures queued for %s", len(missing), backend)


def reconcile(runtime: Runtime, now: datetime | None = None, force: bool = False,
              progress: Callable[[int, int], None] | None = None) -> ReplicationReport:
    """Fill newly configured back-ends, retry every due pending/failed replica, then finish
    captures that are now complete. ``progress(done, total)`` follows the replicas pushed.

    With ``force``, backoff is ignored (``flask mirror reconcile`` run by hand).
    """
    report = ReplicationReport()
    backfill_replicas(runtime, report)
    now = now or utcnow()
    backends = remote_backends(runtime)
    with runtime.Session() as session:
        query = select(Replica.id).where(Replica.state != STORED, Replica.backend.in_(backends))
        if not force:
            # Never-tried replicas belong to the processing job for a while; reconcile takes
            # them only if they are left over (a crashed run), so the two never push the same one.
            grace = timedelta(seconds=max(60.0, 10 * runtime.settings.jobs_poll_seconds))
            query = query.where(
                or_(
                    and_(Replica.attempts > 0, Replica.next_attempt_at <= now),
                    and_(Replica.attempts == 0, Replica.created_at <= now - grace),
                )
            )
        due = list(session.scalars(query.order_by(Replica.id)))
        incomplete = list(
            session.scalars(
                select(Capture.id)
                # Captures not processed yet are the processing job's (it adds their offline copy
                # before the manifest is written; a crashed claim is taken again after its lease).
                .where(Capture.status == "ok", Capture.complete.is_(False), Capture.processed_at.is_not(None))
                .order_by(Capture.id)
            )
        )
    push_replicas(runtime, due, report, progress or _log_progress)
    for capture_id in incomplete:
        finalize_capture(runtime, capture_id, report)
    if report.stored or report.failed:
        log.info("reconcile: %d stored, %d failed", report.stored, report.failed)
    return report


def _log_progress(done: int, total: int) -> None:
    """The scheduler's progress: a log line per thousand replicas of a long pass (a back-end
    being filled), nothing for the usual few."""
    if done % 1000 == 0 or (done == total and total >= 1000):
        log.info("reconcile: %d of %d replicas pushed", done, total)


@dataclass
class VerificationReport:
    """What one verification sweep found: replicas still there, lost ones, back-ends not asked."""

    present: int = 0
    lost: list[tuple[str, str]] = field(default_factory=list)  # (back-end, sha256)
    unreachable: list[str] = field(default_factory=list)


def verify_replicas(runtime: Runtime, limit: int | None = None) -> VerificationReport:
    """Ask each back-end whether the replicas recorded as stored are still there.

    The ``limit`` least recently verified ones are asked (all when None), with a cheap existence
    check (S3 HEAD, IPFS pin listing), never a download. One found missing is marked failed and
    due now, and its captures incomplete (an IPFS loss also drops the capture's directory CID, so
    it is linked and pinned again): reconcile then pushes it from the spool. A back-end that does
    not answer is skipped for this sweep; nothing is marked lost on a timeout.
    """
    report = VerificationReport()
    backends = remote_backends(runtime)
    with runtime.Session() as session:
        query = (
            select(Replica.id, Replica.backend, Replica.locator, Replica.sha256)
            .where(Replica.state == STORED, Replica.backend.in_(backends))
            # Never verified first (NULL sorts first once coalesced), then the oldest check.
            .order_by(Replica.verified_at.is_not(None), Replica.verified_at, Replica.id)
        )
        if limit is not None:
            query = query.limit(limit)
        rows = session.execute(query).all()
    present: list[int] = []
    lost: list[tuple[int, str, str]] = []
    for replica_id, backend, locator, sha256 in rows:
        if backend in report.unreachable:
            continue
        try:
            there = runtime.stores[backend].exists(locator)
        except StorageUnavailableError as exc:
            report.unreachable.append(backend)
            log.warning("verify: %s unreachable, its replicas are left for the next sweep: %s", backend, exc)
            continue
        except StorageError as exc:
            # Refused for another reason (permissions): a problem to report, not evidence of loss.
            log.warning("verify: %s could not check %s: %s", backend, locator, exc)
            continue
        if there:
            present.append(replica_id)
        else:
            lost.append((replica_id, backend, sha256))
    now = utcnow()
    with runtime.Session() as session:
        if present:
            session.execute(update(Replica).where(Replica.id.in_(present)).values(verified_at=now))
        for replica_id, backend, sha256 in lost:
            replica = session.get(Replica, replica_id)
            replica.state = FAILED
            replica.last_error = f"missing from {backend} at verification {now.isoformat()}"
            replica.next_attempt_at = now
            replica.attempts = max(replica.attempts, 1)  # due for reconcile now, not after the grace
            captures = session.scalars(
                select(Capture).join(CapturePart).where(CapturePart.sha256 == sha256).distinct()
            )
            for capture in captures:
                capture.complete = False
                if backend == "ipfs":
                    # The directory linked that part: it is built and pinned again once it is back.
                    capture.cid = None
            log.warning("verify: replica %s in %s is missing; re-pushing from the spool", sha256[:12], backend)
        session.commit()
    report.present = len(present)
    report.lost = [(backend, sha256) for _, backend, sha256 in lost]
    return report


def replica_states(session: Session, capture: Capture) -> list[dict]:
    """Every part of a capture with the state of its replica in each back-end (for the API)."""
    replicas = _replicas_by_backend(session, {p.sha256 for p in capture.parts})
    out = []
    for part in capture.parts:
        states = {"local": {"state": STORED, "locator": part.sha256}}
        for (sha, backend), r in replicas.items():
            if sha == part.sha256:
                states[backend] = {
                    "state": r.state,
                    "locator": r.locator,
                    "attempts": r.attempts,
                    "last_error": r.last_error,
                    "verified_at": r.verified_at.isoformat() if r.verified_at else None,
                }
        out.append(
            {"name": part.name, "role": part.role, "sha256": part.sha256, "size": part.size, "replicas": states}
        )
    return out
