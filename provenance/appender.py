"""The app's own log: its key and origin from the settings, and the pass that appends every stored
capture not yet logged and every curation decision not yet logged, then publishes one new
checkpoint.

Only one process appends (LogWriter's lock): the active scheduler, or `flask log append`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import exists, func, select, union_all, update
from sqlalchemy.orm import Session

from config.settings import Settings
from mirror.models import Capture, CapturePart
from mirror.pipeline import OK
from provenance.decisions import new_decision_rows
from provenance.entries import EntryError
from provenance.keyring import (
    bring_key_entries,
    hand_over_log_key,
    load_role_signer,
    logged_key_entries,
    retired_paths,
)
from provenance.errors import ProvenanceError
from provenance.freshness import REVOKED_ROLES, checkpoint_facts, extension_lines, unix_time
from provenance.keys import RoleKey, read_history, role_key
from provenance.log import LogWriter
from provenance.models import LoggedCapture, LoggedDecisionRow
from provenance.note import Checkpoint, Ed25519Signer
from provenance.records import capture_entry_for
from provenance.tiles import CHECKPOINT_PATH, MAX_TIMESTAMPS, timestamp_path, write_file
from provenance.timestamp import TimestampError, TSAFailure, load_roots, request_timestamps
from provenance.witnessing import WitnessEndpoint, WitnessReport, witness_checkpoint_in
from samizdat.errors import SamizdatError
from samizdat.keyfile import load_or_create_ed25519_key
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

# Captures and decisions recorded per pass: one transaction stays short; a backlog takes a few
# ticks. Decisions are small and come in bulk (a queue approved at once).
BATCH = 1000
DECISION_BATCH = 10_000
# The tables that record which entry is at which index (one index sequence across them).
LOGGED_TABLES = (LoggedCapture, LoggedDecisionRow)


def log_signer(settings: Settings) -> Ed25519Signer:
    """The log's checkpoint signer: its key file (made on first use) under the origin's name."""
    key = load_or_create_ed25519_key(settings.log_signing_key_path, "log signing key")
    return Ed25519Signer(settings.log_origin_name, key)


# Beside the checkpoint: the public key that checks it, so that web nodes (and mirrors) print
# the verifier's command without ever reading the private key.
VERIFIER_KEY_PATH = "verifier-key"


def publish_verifier_key(log_path: Path, vkey: str) -> None:
    """Write the log's verifier key (a signed-note vkey line) beside its checkpoint, if changed."""
    target = log_path / VERIFIER_KEY_PATH
    text = vkey + "\n"
    try:
        if target.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    temporary = log_path / ".verifier-key.tmp"
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(target)


def published_verifier_key(log_path: Path) -> str | None:
    """The verifier key published beside the checkpoint; None when there is none (yet)."""
    try:
        text = (log_path / VERIFIER_KEY_PATH).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None


@dataclass
class StampReport:
    """What one pass got from the TSAs for the latest checkpoint: tokens written, TSAs failed."""

    written: list[str] = field(default_factory=list)  # the tokens' paths in the log directory
    failures: list[TSAFailure] = field(default_factory=list)


@dataclass
class AppendReport:
    """What one pass did: entries replayed from a crashed pass, new captures and new decisions,
    the published size, and the latest checkpoint's new time-stamp tokens."""

    replayed: int = 0
    appended: int = 0
    decisions: int = 0
    keys: int = 0  # key entries (rotations, revocations) newly brought from the queue
    size: int = 0
    published: bool = False
    refreshed: bool = False  # re-signed with nothing appended, the newest being too old
    stamps: StampReport = field(default_factory=StampReport)


def append_captures(runtime: Runtime, batch: int = BATCH,
                    decision_batch: int = DECISION_BATCH) -> AppendReport:
    """One pass of :func:`append_log` in a session of its own."""
    with runtime.Session() as session:
        return append_log(session, runtime.settings, batch, decision_batch)


def append_log(session: Session, settings: Settings, batch: int = BATCH,
               decision_batch: int = DECISION_BATCH) -> AppendReport:
    """Append every stored capture not yet logged (in capture id order), then every curation
    decision that changed a fragment's public state, then publish once. Commits ``session``.

    ProvenanceError when another writer holds the log, or when the log and the database disagree
    about what is logged (never appending then: an entry could be logged twice).
    """
    report = AppendReport()
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name) as writer:
        # Queued key entries become rows before any capture (provenance.keyring says why).
        report.keys = bring_key_entries(settings, session, writer,
                                        _next_index(session, writer.size))
        published = writer.size  # what the signed checkpoint covers
        pending = _pending_entries(session, published)
        # The order that makes a crash harmless: an entry is recorded (committed) before it is
        # appended, and the checkpoint that publishes it is signed after. The checkpoint is the
        # fact, a row at or past its size an intent: the next pass appends those rows' exact
        # bytes again, in their order, before anything new, so full tiles a crashed pass wrote
        # are rewritten identically and nothing gets a second index. The other order (append,
        # publish, then record) would leave published entries the database does not know of, to
        # be appended again.
        entries = list(pending)
        report.replayed = len(entries) - report.keys
        for row in _new_rows(session, published + len(entries), batch):
            session.add(row)
            entries.append(row.entry.encode())
        report.appended = len(entries) - report.replayed
        # Flushed first: a decision is logged only after its capture's entry, this pass's too.
        session.flush()
        for row in new_decision_rows(session, settings, published + len(entries), decision_batch):
            session.add(row)
            entries.append(row.entry.encode())
        report.decisions = len(entries) - report.replayed - report.appended
        session.commit()
        now = int(time.time())
        exists = (writer.directory / CHECKPOINT_PATH).exists()
        report.refreshed = exists and not entries and refresh_due(
            writer.checkpoint, now, settings.log_refresh_seconds)
        if entries or report.refreshed or not exists:
            writer.append(entries)
            # Every checkpoint says when it was signed and which pack and WACZ keys the log
            # revokes (provenance/freshness.py): what widgets check an index against.
            writer.publish(extension_lines(now, revoked_keys(session, settings, writer)))
            report.published = True
        hand_over_log_key(settings, session, writer)  # a log-key rotation, once published
        publish_verifier_key(settings.log_path, writer.signer.verifier.vkey)
        report.size = writer.size
        for table in LOGGED_TABLES:
            session.execute(update(table).where(
                table.log_index < writer.size, table.published.is_(False)
            ).values(published=True))
        session.commit()
        # Still under the writer's lock (one process numbers the tokens), after the log's work is
        # committed: whatever a TSA does, the log has already moved on.
        report.stamps = timestamp_checkpoint(settings, writer.directory, writer.checkpoint)
    return report


def refresh_due(checkpoint: Checkpoint, now: int, refresh_seconds: float) -> bool:
    """Whether the published checkpoint is old enough to be re-signed though nothing was appended:
    its ``time`` line is ``refresh_seconds`` old, or it has none (signed before they existed)."""
    try:
        signed = checkpoint_facts(checkpoint).time
    except ProvenanceError:
        return True
    return signed is None or now - signed >= refresh_seconds


def _log_keys(settings: Settings, writer: LogWriter) -> list[RoleKey]:
    """The log keys this server has held (current and retired): a revocation the log key signed
    is believed when one of them signed it."""
    keys = [role_key("log", writer.signer.verifier.vkey)]
    for path in retired_paths(settings, "log"):
        try:
            keys.append(load_role_signer(settings, "log", path).public)
        except (ProvenanceError, SamizdatError, OSError) as exc:
            log.warning("retired log key %s not read: %s", path, exc)
    return keys


def revoked_keys(session: Session, settings: Settings, writer: LogWriter
                 ) -> list[tuple[str, str, int]]:
    """(role, key id, unix time) of every pack and WACZ key that a key entry in the log (up to
    ``writer.size``) revokes, as :func:`provenance.keys.read_history` reads them (verified, the
    earliest revocation of a key counting)."""
    rows = [(index, entry) for index, entry in logged_key_entries(session) if index < writer.size]
    if not rows:
        return []
    history = read_history(rows, _log_keys(settings, writer))
    return [(role, key_id, unix_time(revoked.time))
            for (role, key_id), revoked in history.revoked.items() if role in REVOKED_ROLES]


def _logged_rows():
    """Every recorded entry, of captures (and key entries) and decisions alike, as one
    (log_index, entry) view: the tables share one index sequence."""
    return union_all(*(select(table.log_index, table.entry) for table in LOGGED_TABLES)).subquery()


def _next_index(session: Session, published: int) -> int:
    """The index the next recorded entry takes: past the checkpoint and past every row recorded
    beyond it by a pass that did not publish."""
    rows = _logged_rows()
    last = session.scalar(select(func.max(rows.c.log_index)))
    return published if last is None else max(published, last + 1)


def _pending_entries(session: Session, published: int) -> list[bytes]:
    """Entries recorded past the checkpoint by a pass that did not publish, in index order;
    checks that the rows below the checkpoint and past it agree with the log."""
    rows = _logged_rows()
    known = session.scalar(select(func.count()).select_from(rows).where(rows.c.log_index < published))
    if known != published:
        raise ProvenanceError(
            f"the log holds {published} entries but the database records {known} of them: "
            "refusing to append (was the database or the log directory restored from another "
            "time?)")
    pending = session.execute(
        select(rows.c.log_index, rows.c.entry).where(rows.c.log_index >= published)
        .order_by(rows.c.log_index)).all()
    if any(index != published + i for i, (index, _) in enumerate(pending)):
        raise ProvenanceError(
            "the database's log indexes past the checkpoint have a gap: refusing to append")
    return [entry.encode() for _, entry in pending]


def _new_rows(session: Session, first_index: int, batch: int) -> list[LoggedCapture]:
    """Rows for up to ``batch`` stored captures not yet logged, in capture id order."""
    captures = session.scalars(
        select(Capture).where(
            Capture.status == OK,
            Capture.complete.is_(True),
            ~exists().where(LoggedCapture.capture_id == Capture.id),
            exists().where(CapturePart.capture_id == Capture.id, CapturePart.role == "manifest"),
        ).order_by(Capture.id).limit(batch))
    rows = []
    for capture in captures:
        try:
            entry = capture_entry_for(session, capture).encode()
        except EntryError as exc:  # one unloggable capture must not hold back the others
            log.warning("capture %d not logged: %s", capture.id, exc)
            continue
        rows.append(LoggedCapture(log_index=first_index + len(rows), capture_id=capture.id,
                                  entry=entry.decode("utf-8")))
    return rows


# Which TSAs already gave a token for the latest checkpoint, so that a pass asks again only those
# that failed. A dotfile: never served or published (tokens are numbered without gaps, so the
# published names cannot say which TSA failed).
STAMPED_STATE = ".timestamps.json"


def timestamp_checkpoint(settings: Settings, directory: Path, checkpoint: Checkpoint) -> StampReport:
    """Ask each configured TSA not yet heard from for a token over ``checkpoint``'s body text and
    publish each as ``timestamp/<size>/<k>.tsr`` (k = 0, 1, … in the order they came).

    Never raises: a failing TSA (or roots file, or disk) is logged in one line and asked again at
    the next pass, as long as this checkpoint is the latest.
    """
    report = StampReport()
    urls = settings.tsa_url_list
    if not urls:
        return report
    size = checkpoint.size
    stamped = _stamped_by(directory, size)
    count = published_token_count(directory, size)
    todo = [url for url in urls if url not in stamped]
    if not todo or count >= MAX_TIMESTAMPS:
        return report
    try:
        roots = load_roots(settings.tsa_roots)
    except TimestampError as exc:
        log.warning("checkpoint %d not time-stamped: %s", size, exc)
        report.failures = [TSAFailure(url, str(exc)) for url in todo]
        return report
    # The tree head (origin, size, root), not the signed note: the same bytes whatever
    # cosignatures are added later and whatever time line a refresh of the same tree carries.
    try:
        results = request_timestamps(checkpoint.tree_head().encode(), todo, roots)
    except Exception as exc:  # noqa: BLE001 - whatever breaks here, the log has moved on already
        log.warning("checkpoint %d not time-stamped: %s", size, exc)
        report.failures = [TSAFailure(url, str(exc)) for url in todo]
        return report
    for failure in results.failures:
        log.warning("checkpoint %d not time-stamped by %s: %s", size, failure.tsa_url, failure.reason)
    report.failures.extend(results.failures)
    for stamp in results.timestamps[:MAX_TIMESTAMPS - count]:
        path = timestamp_path(size, count)
        try:
            write_file(directory, path, stamp.token)
            stamped.append(stamp.tsa_url)
            _save_stamped(directory, size, stamped)
        except (ProvenanceError, OSError) as exc:  # a full disk, say: asked again next pass
            log.warning("checkpoint %d: token of %s not published: %s", size, stamp.tsa_url, exc)
            report.failures.append(TSAFailure(stamp.tsa_url, f"not published: {exc}"))
            break
        report.written.append(path)
        count += 1
    return report


def published_token_count(directory: Path, size: int) -> int:
    """How many tokens ``timestamp/<size>/`` holds, counted from 0 up to the first missing."""
    count = 0
    while count < MAX_TIMESTAMPS and (directory / timestamp_path(size, count)).is_file():
        count += 1
    return count


def _stamped_by(directory: Path, size: int) -> list[str]:
    """The TSAs that gave a token for the checkpoint of ``size`` (none known for any other size)."""
    try:
        state = json.loads((directory / STAMPED_STATE).read_text(encoding="utf-8"))
        if state["size"] == size and all(isinstance(url, str) for url in state["tsa_urls"]):
            return list(state["tsa_urls"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, or unreadable: asking again costs at most a second token
    return []


def _save_stamped(directory: Path, size: int, urls: list[str]) -> None:
    """Record which TSAs gave a token for the checkpoint of ``size``, atomically."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"size": size, "tsa_urls": urls}, f)
        os.replace(tmp, directory / STAMPED_STATE)
    except BaseException:
        os.unlink(tmp)
        raise


def logged_index(session: Session, capture_id: int) -> int | None:
    """The capture's index in the published log; None while no signed checkpoint covers it."""
    return session.scalar(select(LoggedCapture.log_index).where(
        LoggedCapture.capture_id == capture_id, LoggedCapture.published.is_(True)))


def witness_endpoints(settings: Settings) -> list[WitnessEndpoint]:
    """The log's witnesses (``SAMIZDAT_WITNESSES``, checked when the settings were loaded)."""
    return [WitnessEndpoint.parse(vkey, url) for vkey, url in settings.witness_list]


def witness_checkpoint(runtime: Runtime) -> WitnessReport:
    """Ask the witnesses that have not cosigned the published checkpoint yet, and add what they
    return to it (see provenance/witnessing.py); never raises for a witness's failure."""
    return witness_log_checkpoint(runtime.settings)


def witness_log_checkpoint(settings: Settings) -> WitnessReport:
    """:func:`witness_checkpoint` from the settings alone (the packs' publisher calls it after its
    own log pass, so that the indexes carry a cosigned checkpoint)."""
    endpoints = witness_endpoints(settings)
    if not endpoints:
        return WitnessReport()
    signer = log_signer(settings)

    def lock_log() -> LogWriter:
        # The writer's lock, held only while the checkpoint file is rewritten: never during the
        # witnesses' round trips, so a slow witness never holds back an append.
        return LogWriter(settings.log_path, signer, settings.log_origin_name)

    return witness_checkpoint_in(settings.log_path, settings.log_origin_name, signer.verifier,
                                 endpoints, settings.witness_quorum_count, lock_log)
