"""The app's own log: its key and origin from the settings, and the pass that appends every stored
capture not yet logged and every curation decision not yet logged, then publishes one new
checkpoint.

Only one process appends (LogWriter's lock): the active scheduler, or `flask log append`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, func, select, union_all, update
from sqlalchemy.orm import Session

from config.settings import Settings
from mirror.models import Capture, CapturePart
from mirror.pipeline import OK
from provenance.decisions import new_decision_rows
from provenance.entries import EntryError
from provenance.errors import ProvenanceError
from provenance.log import LogWriter
from provenance.models import LoggedCapture, LoggedDecisionRow
from provenance.note import Ed25519Signer
from provenance.records import capture_entry_for
from provenance.tiles import CHECKPOINT_PATH
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
class AppendReport:
    """What one pass did: entries replayed from a crashed pass, new captures and new decisions,
    the published size."""

    replayed: int = 0
    appended: int = 0
    decisions: int = 0
    size: int = 0
    published: bool = False


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
        report.replayed = len(entries)
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
        if entries or not (writer.directory / CHECKPOINT_PATH).exists():
            writer.append(entries)
            writer.publish()
            report.published = True
        publish_verifier_key(settings.log_path, writer.signer.verifier.vkey)
        report.size = writer.size
        for table in LOGGED_TABLES:
            session.execute(update(table).where(
                table.log_index < writer.size, table.published.is_(False)
            ).values(published=True))
        session.commit()
    return report


def _logged_rows():
    """Every recorded entry, of captures and decisions alike, as one (log_index, entry) view:
    the two tables share one index sequence."""
    return union_all(*(select(table.log_index, table.entry) for table in LOGGED_TABLES)).subquery()


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


def logged_index(session: Session, capture_id: int) -> int | None:
    """The capture's index in the published log; None while no signed checkpoint covers it."""
    return session.scalar(select(LoggedCapture.log_index).where(
        LoggedCapture.capture_id == capture_id, LoggedCapture.published.is_(True)))
