"""After `flask mirror rebuild-index`: which capture is at which index, read back from the log itself.

The database is an index, the log is the fact. A rebuild restores captures from the bucket's
manifests; this module then reads every entry of the published log (the local log directory, or
the bucket's ``log/`` when there is none), checked against the signed checkpoint, and records each
capture entry against the rebuilt capture whose manifest gives the same bytes. Where the two
disagree it says so, one line each: an entry whose capture the bucket lacks, a capture the log
lacks, a capture whose manifest differs from its entry. Decision entries are counted, not restored
here (their table belongs to the curation log).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select
from sqlalchemy.orm import Session

from mirror.models import Capture, CapturePart
from mirror.pipeline import OK
from provenance import merkle
from provenance.appender import VERIFIER_KEY_PATH, log_signer
from provenance.entries import (
    CaptureEntry,
    CaptureFacts,
    DecisionEntry,
    EntryError,
    KeyEntry,
    PartRef,
    capture_entry,
    format_time,
    parse_entry,
)
from provenance.errors import ProvenanceError, TileError
from fragments.models import Fragment
from provenance.models import LoggedCapture, LoggedDecisionRow
from provenance.note import MAX_NOTE_BYTES, Ed25519Verifier, open_checkpoint
from provenance.publish import LOG_SITE
from provenance.merkle import TILE_WIDTH
from provenance.tiles import MAX_ENTRY_SIZE, CHECKPOINT_PATH, DirectoryFetcher, Fetcher, TileReader
from samizdat.errors import SamizdatError, UnsafePathError
from samizdat.paths import confined_file, confined_name
from samizdat.runtime import Runtime

# A verifier key line is short; anything longer is not one.
MAX_VKEY_BYTES = 1024
# No file of a log is larger than a full entry bundle (256 entries of at most 65,535 bytes, each
# with its 2-byte length): a larger object in the bucket's log/ is not copied home.
MAX_LOG_FILE_BYTES = TILE_WIDTH * (2 + MAX_ENTRY_SIZE)


class S3LogFetcher:
    """Reads the log the publisher put under the bucket's ``log/``, never more than asked."""

    def __init__(self, store, prefix: str = f"{LOG_SITE}/") -> None:
        self.store = store
        self.prefix = prefix

    def fetch(self, path: str, max_bytes: int) -> bytes:
        """See :class:`provenance.tiles.Fetcher`: a ranged GET of at most ``max_bytes`` + 1."""
        key = self.prefix + confined_name(path)
        try:
            answer = self.store.client.get_object(Bucket=self.store.bucket, Key=key,
                                                  Range=f"bytes=0-{max_bytes}")
            data = answer["Body"].read(max_bytes + 1)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "InvalidRange"):
                raise FileNotFoundError(f"s3://{self.store.bucket}/{key}: not found") from None
            raise TileError(f"s3://{self.store.bucket}/{key}: {exc}") from None
        except BotoCoreError as exc:
            raise TileError(f"s3://{self.store.bucket}/{key}: {exc}") from None
        if len(data) > max_bytes:
            raise TileError(f"{path} is larger than {max_bytes} bytes")
        return data


@dataclass
class LogRestoreReport:
    """What was read from the log and matched to the rebuilt captures."""

    location: str = ""  # where the log was read, or "" when there is none
    size: int = 0
    captures: int = 0  # capture entries in the log
    decisions: int = 0  # decision entries: restored as log_decisions rows
    keys: int = 0  # key rotations and revocations: restored as rows without a capture
    restored: int = 0  # capture entries matched to a rebuilt capture
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the operator."""
        if not self.location:
            return "no log to restore from (none in the log directory or the bucket's log/)"
        return (f"log ({self.location}, {self.size} entries): {self.restored} of {self.captures} "
                f"capture entries matched to restored captures; {self.keys} key entries restored; "
                f"{self.decisions} decision entries restored")


def _fetch_vkey(fetcher: Fetcher) -> str | None:
    if isinstance(fetcher, DirectoryFetcher):
        path = fetcher.root / VERIFIER_KEY_PATH
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_VKEY_BYTES + 1)
        except OSError:
            return None
    else:
        try:
            data = fetcher.fetch(VERIFIER_KEY_PATH, MAX_VKEY_BYTES)
        except (FileNotFoundError, ProvenanceError):
            return None
    if len(data) > MAX_VKEY_BYTES:
        return None
    return data.decode("utf-8", "replace").strip() or None


def _locate(runtime: Runtime) -> tuple[Fetcher | None, str]:
    settings = runtime.settings
    if (settings.log_path / CHECKPOINT_PATH).is_file():
        return DirectoryFetcher(settings.log_path), f"the log directory {settings.log_path}"
    if settings.s3_bucket:
        store = runtime.stores["s3"]
        fetcher = S3LogFetcher(store)
        try:
            fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES)
        except (FileNotFoundError, ProvenanceError):
            return None, ""
        return fetcher, f"s3://{settings.s3_bucket}/{LOG_SITE}/"
    return None, ""


def read_log(runtime: Runtime, report: LogRestoreReport) -> tuple[Fetcher, list[bytes]] | None:
    """Every entry of the log, checked against its signed checkpoint; None when there is no log.

    ProvenanceError when the log does not verify (then nothing is restored from it)."""
    settings = runtime.settings
    fetcher, report.location = _locate(runtime)
    if fetcher is None:
        return None
    if settings.log_signing_key_path.exists():
        verifier = log_signer(settings).verifier
    else:
        # No key on this server (yet): the key published beside the log is all there is.
        vkey = _fetch_vkey(fetcher)
        if vkey is None:
            raise ProvenanceError(f"{report.location}: no signing key here and no verifier-key there")
        verifier = Ed25519Verifier.from_vkey(vkey)
        report.notes.append(f"checked with the verifier key published beside the log ({vkey}), "
                            f"not this server's own key ({settings.log_signing_key_path} is missing)")
    checkpoint, _ = open_checkpoint(fetcher.fetch(CHECKPOINT_PATH, MAX_NOTE_BYTES),
                                    settings.log_origin_name, verifier)
    reader = TileReader(fetcher, checkpoint.size)
    entries: list[bytes] = []
    for bundle in range((checkpoint.size + merkle.TILE_WIDTH - 1) // merkle.TILE_WIDTH):
        entries += reader.bundle(bundle)  # each entry checked against its level-0 tile
    # And every entry against the signed root: the level-0 tiles themselves are proven.
    if merkle.tree_hash(merkle.MemoryHashes(entries), checkpoint.size) != checkpoint.root_hash:
        raise ProvenanceError(f"{report.location}: the entries do not hash to the signed checkpoint")
    report.size = checkpoint.size
    return fetcher, entries


@dataclass(frozen=True)
class _Rebuilt:
    capture_id: int
    url: str
    time: str
    manifest: str
    entry: bytes | None  # None when its manifest cannot be read back


def _manifest_entry(data: bytes, manifest_sha: str) -> CaptureEntry:
    """The capture entry a manifest's bytes give (as the verifier rebuilds it from a folder): its
    parts with the CIDs the manifest lists, which the rebuilt replica rows do not have yet."""
    body = json.loads(data)
    parts = tuple(PartRef(p.get("name"), p.get("sha256"), p.get("cid")) for p in body["parts"])
    facts = CaptureFacts(body["url"], datetime.fromisoformat(body["fetched_at"]), parts)
    return capture_entry(facts, manifest_sha)


def _rebuilt_captures(runtime: Runtime, session: Session) -> list[_Rebuilt]:
    local = runtime.stores["local"]
    rows = session.execute(
        select(Capture.id, Capture.url, Capture.fetched_at, CapturePart.sha256)
        .join(CapturePart, (CapturePart.capture_id == Capture.id) & (CapturePart.role == "manifest"))
        .where(Capture.status == OK).order_by(Capture.id))
    out = []
    for capture_id, url, fetched_at, manifest in rows:
        try:
            entry = _manifest_entry(local.get(manifest), manifest).encode()
        except (SamizdatError, EntryError, ValueError, KeyError, TypeError, AttributeError):
            entry = None
        out.append(_Rebuilt(capture_id, url, format_time(fetched_at), manifest, entry))
    return out


def _restore_decision(session: Session, index: int, data: bytes, entry: DecisionEntry,
                      known: dict[int, str], report: LogRestoreReport) -> None:
    """Record a logged decision again, under the rebuilt fragment's review stamp so that the next
    pass sees no new review in it (a different state later is a new decision, logged then)."""
    if index in known:
        if known[index] != data.decode("utf-8"):
            report.problems.append(f"log entry {index}: the database already records other bytes at this index")
        return
    fragment = session.get(Fragment, entry.fragment)
    session.add(LoggedDecisionRow(
        log_index=index, fragment_id=entry.fragment, decision=entry.decision,
        text_sha256=entry.text_sha256, reviewed_at=fragment.reviewed_at if fragment else None,
        entry=data.decode("utf-8"), published=True))


def restore_logged_captures(runtime: Runtime) -> LogRestoreReport:
    """Fill ``log_captures`` from the log's capture entries (see the module docstring)."""
    report = LogRestoreReport()
    try:
        found = read_log(runtime, report)
    except (ProvenanceError, OSError, SamizdatError) as exc:
        report.problems.append(f"log {report.location}: not read, nothing restored from it: {exc}")
        return report
    if found is None:
        return report
    fetcher, entries = found
    with runtime.Session() as session:
        known = dict(session.execute(select(LoggedCapture.log_index, LoggedCapture.entry)).all())
        known.update(session.execute(select(LoggedDecisionRow.log_index, LoggedDecisionRow.entry)).all())
        rebuilt = _rebuilt_captures(runtime, session)
        by_manifest = {r.manifest: r for r in rebuilt}
        by_moment: dict[tuple[str, str], list[_Rebuilt]] = {}
        for r in rebuilt:
            by_moment.setdefault((r.url, r.time), []).append(r)
        logged = set(session.scalars(select(LoggedCapture.capture_id).where(
            LoggedCapture.capture_id.is_not(None))))
        matched: set[int] = set()
        for index, data in enumerate(entries):
            try:
                entry = parse_entry(data)
            except EntryError as exc:
                report.problems.append(f"log entry {index}: not an entry Samizdat writes: {exc}")
                continue
            if isinstance(entry, DecisionEntry):
                # One index sequence over both tables: without these rows the next append pass
                # would count fewer rows than the log holds and refuse to append.
                report.decisions += 1
                _restore_decision(session, index, data, entry, known, report)
                continue
            if isinstance(entry, KeyEntry):
                # Kept as the keyring keeps them: a row with no capture, so the key history (and
                # the verifiers' refusal of a revoked key) survives the rebuild.
                report.keys += 1
                capture_id = None
            else:
                report.captures += 1
                capture_id = _match(index, data, entry, by_manifest, by_moment, report)
            if capture_id is not None:
                matched.add(capture_id)
            if index in known:
                if known[index] != data.decode("utf-8"):
                    report.problems.append(f"log entry {index}: the database already records other bytes at this index")
                continue
            if capture_id in logged:
                report.problems.append(f"log entry {index}: capture {capture_id} is already recorded at another index")
                capture_id = None
            # Every entry gets its row, matched or not: the log never forgets one, and the next
            # append pass counts them before it adds anything.
            session.add(LoggedCapture(log_index=index, capture_id=capture_id, entry=data.decode("utf-8"),
                                      published=True))
            if capture_id is not None:
                report.restored += 1
                logged.add(capture_id)

        for r in rebuilt:
            if r.capture_id not in matched and r.capture_id not in logged:
                report.problems.append(
                    f"capture of {r.url} at {r.time} (manifest {r.manifest[:12]}): restored from the "
                    "bucket but not in the log (the next append pass logs it as a new entry)")
        session.commit()
    if isinstance(fetcher, S3LogFetcher):
        _copy_log_home(runtime, fetcher, report)
    return report


def _match(index: int, data: bytes, entry: CaptureEntry, by_manifest: dict[str, _Rebuilt],
           by_moment: dict[tuple[str, str], list[_Rebuilt]], report: LogRestoreReport) -> int | None:
    """The rebuilt capture whose entry is ``data``; None (and one line saying why) if none is."""
    where = f"log entry {index} ({entry.url} at {entry.time})"
    found = by_manifest.get(entry.manifest)
    if found is not None:
        if found.entry == data:
            return found.capture_id
        report.problems.append(f"{where}: capture {found.capture_id} has its manifest but not "
                               "the same entry (parts or CIDs differ)")
        return None
    same_moment = by_moment.get((entry.url, entry.time))
    if same_moment:
        report.problems.append(
            f"{where}: capture {same_moment[0].capture_id} restored from the bucket has manifest "
            f"{same_moment[0].manifest[:12]}, the log's entry {entry.manifest[:12]}: they differ")
    else:
        report.problems.append(f"{where}: in the log, but the bucket has no such capture")
    return None


def _copy_log_home(runtime: Runtime, fetcher: S3LogFetcher, report: LogRestoreReport) -> None:
    """Copy the bucket's verified log into the empty log directory, so the next append pass goes
    on with the same log instead of starting a new one (only under this server's own key)."""
    settings = runtime.settings
    if not settings.log_signing_key_path.exists():
        report.notes.append(f"the log was not copied into {settings.log_path}: this server has no "
                            "signing key, so it cannot go on appending to it")
        return
    root: Path = settings.log_path
    root.mkdir(parents=True, exist_ok=True)
    store = fetcher.store
    copied = 0
    try:
        sizes = {key[len(fetcher.prefix):]: size for key, size in store.list_keys(fetcher.prefix)}
        # The checkpoint last: the directory never holds one without its tiles.
        for path in sorted(sizes, key=lambda p: (p == CHECKPOINT_PATH, p)):
            if any(segment.startswith(".") for segment in path.split("/")):
                continue
            if sizes[path] > MAX_LOG_FILE_BYTES:
                report.problems.append(f"log file {path[:80]!r} in the bucket not copied: "
                                       f"{sizes[path]} bytes, more than any log file holds")
                continue
            try:
                target = confined_file(root, path)
            except UnsafePathError as exc:
                report.problems.append(f"log file {path[:80]!r} in the bucket not copied: {exc}")
                continue
            data = store.get(fetcher.prefix + path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            copied += 1
    except SamizdatError as exc:
        report.problems.append(f"the log could not be copied into {root}: {exc}")
        return
    report.notes.append(f"{copied} log files copied from the bucket into {root}")
