"""The app's own log: its key and origin from the settings, and the pass that appends every stored
capture not yet logged, then publishes one new checkpoint.

Only one process appends (LogWriter's lock): the active scheduler, or `flask log append`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from config.settings import Settings
from mirror.models import Capture, CapturePart
from mirror.pipeline import OK
from provenance.entries import EntryError
from provenance.keyring import bring_key_entries, hand_over_log_key
from provenance.errors import ProvenanceError
from provenance.log import LogWriter
from provenance.models import LoggedCapture
from provenance.note import Ed25519Signer
from provenance.records import capture_entry_for
from provenance.tiles import CHECKPOINT_PATH
from samizdat.keyfile import load_or_create_ed25519_key
from samizdat.runtime import Runtime

log = logging.getLogger(__name__)

# Captures recorded per pass: one transaction stays short; a backlog takes a few ticks.
BATCH = 1000


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
    """What one pass did: entries replayed from a crashed pass, new captures, the published size."""

    replayed: int = 0
    appended: int = 0
    keys: int = 0  # key entries (rotations, revocations) newly brought from the queue
    size: int = 0
    published: bool = False


def append_captures(runtime: Runtime, batch: int = BATCH) -> AppendReport:
    """Append every stored capture not yet logged (in capture id order), then publish once.

    ProvenanceError when another writer holds the log, or when the log and the database disagree
    about what is logged (never appending then: a capture could be logged twice).
    """
    settings = runtime.settings
    report = AppendReport()
    with LogWriter(settings.log_path, log_signer(settings), settings.log_origin_name) as writer, \
            runtime.Session() as session:
        # Queued key entries become rows before any capture (provenance.keyring says why).
        report.keys = bring_key_entries(settings, session, writer,
                                        _next_index(session, writer.size))
        published = writer.size  # what the signed checkpoint covers
        pending = _pending_rows(session, published)
        # The order that makes a crash harmless: a capture's entry is recorded (committed) before
        # it is appended, and the checkpoint that publishes it is signed after. The checkpoint is
        # the fact, a row at or past its size an intent: the next pass appends those rows' exact
        # bytes again, in their order, before anything new, so full tiles a crashed pass wrote are
        # rewritten identically and no capture gets a second index. The other order (append,
        # publish, then record) would leave published entries the database does not know of, to
        # be appended again.
        entries = [row.entry.encode() for row in pending]
        report.replayed = len(entries) - report.keys
        for row in _new_rows(session, published + len(entries), batch):
            session.add(row)
            entries.append(row.entry.encode())
        report.appended = len(entries) - report.replayed
        session.commit()
        if entries or not (writer.directory / CHECKPOINT_PATH).exists():
            writer.append(entries)
            writer.publish()
            report.published = True
        hand_over_log_key(settings, session, writer)  # a log-key rotation, once published
        publish_verifier_key(settings.log_path, writer.signer.verifier.vkey)
        report.size = writer.size
        session.execute(update(LoggedCapture).where(
            LoggedCapture.log_index < writer.size, LoggedCapture.published.is_(False)
        ).values(published=True))
        session.commit()
    return report


def _next_index(session: Session, published: int) -> int:
    """The index the next recorded entry takes: past the checkpoint and past every row recorded
    beyond it by a pass that did not publish."""
    last = session.scalar(select(func.max(LoggedCapture.log_index)))
    return published if last is None else max(published, last + 1)


def _pending_rows(session: Session, published: int) -> list[LoggedCapture]:
    """Rows recorded past the checkpoint by a pass that did not publish; checks the rest agree."""
    known = session.scalar(select(func.count()).where(LoggedCapture.log_index < published))
    if known != published:
        raise ProvenanceError(
            f"the log holds {published} entries but the database records {known} of them: "
            "refusing to append (was the database or the log directory restored from another "
            "time?)")
    pending = list(session.scalars(
        select(LoggedCapture).where(LoggedCapture.log_index >= published)
        .order_by(LoggedCapture.log_index)))
    if any(row.log_index != published + i for i, row in enumerate(pending)):
        raise ProvenanceError(
            "the database's log indexes past the checkpoint have a gap: refusing to append")
    return pending


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
