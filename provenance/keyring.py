"""The server's signing keys (log, pack, WACZ): where each lives, its rotation and revocation, and
the queue that brings those key entries into the log.

A rotation or revocation is queued in ``.key-queue`` in the log directory (a dotfile: never
served), one canonical entry per line. The appender's pass records each queued entry as a
``log_captures`` row with no capture (the same intent-then-append order that makes a crashed pass
harmless for captures), and the queue forgets an entry only once a signed checkpoint covers it.
Old keys are kept in ``retired/`` beside the role's key file; a log-key rotation waits in
``<key file>.next`` until the checkpoint covering it is published (docs/security.md, "Keys").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from provenance.entries import REVOKE, ROTATE, EntryError, KeyEntry, check_time, parse_entry
from provenance.errors import ProvenanceError
from provenance.keys import RoleSigner, revocation, rotation
from provenance.log import LogWriter
from provenance.models import LoggedCapture
from provenance.note import Ed25519Signer, sign_note
from provenance.tiles import CHECKPOINT_PATH, write_file
from samizdat.atomicfile import write_atomic
from samizdat.errors import SamizdatError
from samizdat.keyfile import load_or_create_ed25519_key, load_private_key, write_private_key

ROLES = ("log", "pack", "wacz")
QUEUE_NAME = ".key-queue"
RETIRED_DIR = "retired"
NEXT_SUFFIX = ".next"
_KEY_MARK = '"type":"key"'


class KeyringError(SamizdatError):
    """A key command was refused; the message says why and what to do."""


# --- files --------------------------------------------------------------------------------------


def key_path(settings: Settings, role: str) -> Path:
    """The file of ``role``'s current key."""
    if role == "log":
        return settings.log_signing_key_path
    if role == "pack":
        return settings.embed_signing_key_path
    if role == "wacz":
        return settings.wacz_signing_key_path
    raise KeyringError(f"unknown key role {role!r}: one of {', '.join(ROLES)}")


def _generate(role: str):
    return ec.generate_private_key(ec.SECP384R1()) if role == "wacz" else \
        Ed25519PrivateKey.generate()


def load_role_signer(settings: Settings, role: str, path: Path | None = None) -> RoleSigner:
    """``role``'s key at ``path`` (default: its current file), which must exist."""
    path = path or key_path(settings, role)
    if not path.exists():
        raise KeyringError(f"there is no {role} key at {path} (it is made on first use)")
    key = load_private_key(path, f"{role} signing key")
    wanted = ec.EllipticCurvePrivateKey if role == "wacz" else Ed25519PrivateKey
    if not isinstance(key, wanted):
        raise KeyringError(f"the {role} key at {path} is not of the {role} key's type")
    return RoleSigner(role, key, settings.log_origin_name if role == "log" else None)


def retired_dir(settings: Settings, role: str) -> Path:
    """Where ``role``'s rotated-out keys are kept."""
    return key_path(settings, role).parent / RETIRED_DIR


def retired_paths(settings: Settings, role: str) -> list[Path]:
    """``role``'s rotated-out key files, oldest name first (``<role>-<key id>.pem``)."""
    folder = retired_dir(settings, role)
    if not folder.is_dir():
        return []
    return sorted(folder.glob(f"{role}-*.pem"))


# --- the queue ----------------------------------------------------------------------------------


def queue_path(settings: Settings) -> Path:
    """The queue of key entries waiting for the log."""
    return settings.log_path / QUEUE_NAME


def queued(settings: Settings) -> list[bytes]:
    """The queued key entries' bytes, in order."""
    try:
        data = queue_path(settings).read_bytes()
    except FileNotFoundError:
        return []
    return [line for line in data.split(b"\n") if line]


def _write_queue(settings: Settings, entries: list[bytes]) -> None:
    settings.log_path.mkdir(parents=True, exist_ok=True)
    write_atomic(queue_path(settings), b"".join(e + b"\n" for e in entries), sync=True)


def enqueue(settings: Settings, entry: KeyEntry) -> None:
    """Queue ``entry`` for the log's next pass (once: the same bytes are queued only once)."""
    data = entry.encode()
    entries = queued(settings)
    if data not in entries:
        _write_queue(settings, [*entries, data])


def _logged_key_rows(session: Session) -> list[LoggedCapture]:
    """The log's key entries recorded in the database, in log order."""
    return list(session.scalars(select(LoggedCapture).where(
        LoggedCapture.capture_id.is_(None), LoggedCapture.entry.contains(_KEY_MARK))
        .order_by(LoggedCapture.log_index)))


def logged_key_entries(session: Session) -> list[tuple[int, bytes]]:
    """The key entries recorded in the database as (log index, bytes), in log order."""
    return [(row.log_index, row.entry.encode()) for row in _logged_key_rows(session)]


def record_queued_entries(settings: Settings, session: Session, writer: LogWriter,
                          following: int) -> int:
    """Record every queued key entry not yet in the log as a row from index ``following`` (the
    appender's next free index), to be appended by this pass; drop from the queue those a
    published checkpoint covers. Returns how many were recorded."""
    entries = queued(settings)
    if not entries:
        return 0
    rows = {row.entry.encode(): row for row in _logged_key_rows(session)}
    recorded = 0
    for data in entries:
        if data in rows:
            continue  # recorded already (a crashed pass, or published and not yet dropped)
        try:
            parse_entry(data)
        except EntryError as exc:  # a queue edited by hand: never log what does not parse
            raise ProvenanceError(f"the key queue {queue_path(settings)} holds an invalid entry "
                                  f"({exc}): remove that line") from None
        row = LoggedCapture(log_index=following, capture_id=None, entry=data.decode("utf-8"))
        session.add(row)
        rows[data] = row
        following += 1
        recorded += 1
    session.commit()
    left = [data for data in entries if not (rows[data].published and
                                             rows[data].log_index < writer.size)]
    if left != entries:
        _write_queue(settings, left)
    return recorded


# --- rotation, revocation -----------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _keep_retired(settings: Settings, signer: RoleSigner) -> Path:
    """Keep ``signer``'s key in ``retired/`` (mode 0600); its path."""
    path = retired_dir(settings, signer.role) / f"{signer.role}-{signer.public.key_id}.pem"
    write_private_key(path, signer.private_key)  # False: kept already by an interrupted rotation
    return path


def rotate(settings: Settings, session: Session, role: str) -> KeyEntry:
    """Make a new key for ``role``, queue the rotation signed by the old and the new key, and (pack
    and WACZ) put the new key in place at once, the old one kept in ``retired/``. The log's new key
    waits in ``<key file>.next`` until the rotation is published (:func:`hand_over_log_key`)."""
    path = key_path(settings, role)
    pending = path.with_name(path.name + NEXT_SUFFIX)
    old = load_role_signer(settings, role)
    if pending.exists():
        waiting = load_role_signer(settings, role, pending).public.key_id
        entry = next((e for e, _ in key_entries(settings, session) if e.action == ROTATE
                      and e.role == role and e.new_key_id == waiting), None)
        if entry is None:
            raise KeyringError(f"{pending} holds a key no rotation names: remove it, then rotate")
        if role == "log":
            raise KeyringError(f"the rotation of the log key to {waiting} completes after the "
                               "next log pass publishes it")
        _finish(settings, old, pending, path)  # a rotation interrupted after it was queued
        return entry
    new = RoleSigner(role, _generate(role), old.name)
    entry = rotation(old, new, _now())
    # In this order a crash leaves either nothing queued (an unused .next file, refused above)
    # or the entry queued with the new key on disk: never a logged rotation to a lost key.
    write_private_key(pending, new.private_key)
    enqueue(settings, entry)
    if role != "log":
        _finish(settings, old, pending, path)
    return entry


def _finish(settings: Settings, old: RoleSigner, pending: Path, path: Path) -> None:
    """Keep ``old`` in ``retired/``, then put the pending key in its place (one atomic rename:
    the key file never goes missing, so no process ever makes a fresh key meanwhile)."""
    _keep_retired(settings, old)
    pending.replace(path)


def revoke(settings: Settings, role: str, key_id: str, at: str | None = None) -> KeyEntry:
    """Queue the revocation of ``role``'s key ``key_id`` from ``at`` (default: now), signed by
    that key if its file is kept here, else by the log key (and the entry says so)."""
    width = 8 if role == "log" else 16
    if not re.fullmatch(f"[0-9a-f]{{{width}}}", key_id):
        raise KeyringError(f"a {role} key id is {width} lowercase hex digits (flask keys list)")
    at = at or _now()
    try:
        check_time(at)
    except EntryError as exc:
        raise KeyringError(str(exc)) from None
    current = key_path(settings, role)
    if current.exists() and load_role_signer(settings, role).public.key_id == key_id:
        raise KeyringError(f"{key_id} is the current {role} key: rotate it first "
                           f"(flask keys rotate {role}), then revoke it")
    own = None
    for path in retired_paths(settings, role):
        signer = load_role_signer(settings, role, path)
        if signer.public.key_id == key_id:
            own = signer
    try:
        if own is not None:
            entry = revocation(role, key_id, at, old=own)
        else:
            log = load_or_create_ed25519_key(settings.log_signing_key_path, "log signing key")
            entry = revocation(role, key_id, at, log=RoleSigner("log", log,
                                                                settings.log_origin_name))
    except ProvenanceError as exc:
        raise KeyringError(str(exc)) from None
    enqueue(settings, entry)
    return entry


def key_entries(settings: Settings, session: Session) -> list[tuple[KeyEntry, bool]]:
    """Every key entry this server made: (entry, published), the logged ones then the queued."""
    found, seen = [], set()
    for row in _logged_key_rows(session):
        data = row.entry.encode()
        seen.add(data)
        found.append((parse_entry(data), bool(row.published)))
    found += [(parse_entry(data), False) for data in queued(settings) if data not in seen]
    return found


def revoked_ids(settings: Settings, session: Session, role: str) -> dict[str, str]:
    """``role``'s revoked key ids, logged or queued, with the time each revocation takes effect."""
    return {entry.key_id: entry.time for entry, _ in key_entries(settings, session)
            if entry.role == role and entry.action == REVOKE}


# --- the log key's handover ---------------------------------------------------------------------


def hand_over_log_key(settings: Settings, session: Session, writer: LogWriter) -> bool:
    """Once ``writer``'s signed checkpoint covers the log-key rotation: re-sign that checkpoint
    with the old and the new key (a signed note may carry both), put the new key in place (the old
    in ``retired/``) and have ``writer`` sign with it from now on. True when it handed over.
    Called last in the appender's pass, so the checkpoint both keys sign stays published until
    the next pass that appends anything."""
    path = settings.log_signing_key_path
    pending = path.with_name(path.name + NEXT_SUFFIX)
    if not pending.exists():
        return False
    old = writer.signer
    new = Ed25519Signer(old.name, load_role_signer(settings, "log", pending).private_key)
    old_id, new_id = f"{old.key_id:08x}", f"{new.key_id:08x}"
    published = [row for row in _logged_key_rows(session)
                 if row.log_index < writer.checkpoint.size]
    due = False
    for row in published:
        entry = parse_entry(row.entry.encode())
        if (entry.role, entry.action, entry.key_id, entry.new_key_id) == \
                ("log", ROTATE, old_id, new_id):
            due = True
    if not due:
        return False
    both = sign_note(writer.checkpoint.text(), [old, new])
    # The checkpoint both keys sign first: a verifier pinned to the old key reads it, finds the
    # rotation entry it covers, and follows to the new key.
    write_file(writer.directory, CHECKPOINT_PATH, both)
    _finish(settings, load_role_signer(settings, "log"), pending, path)
    writer.signer = new
    return True


@dataclass(frozen=True)
class KeyInfo:
    """One key file as `flask keys list` shows it."""

    role: str
    key_id: str
    path: Path
    state: str  # current, next, retired
    revoked_at: str | None


def list_keys(settings: Settings, session: Session) -> list[KeyInfo]:
    """Every key file of every role: current, waiting (``.next``), retired; with revocations."""
    found = []
    for role in ROLES:
        revoked = revoked_ids(settings, session, role)
        path = key_path(settings, role)
        files = [(path, "current"), (path.with_name(path.name + NEXT_SUFFIX), "next")]
        files += [(p, "retired") for p in retired_paths(settings, role)]
        for file, state in files:
            if not file.exists():
                continue
            key_id = load_role_signer(settings, role, file).public.key_id
            found.append(KeyInfo(role, key_id, file, state, revoked.get(key_id)))
    return found


def bring_key_entries(settings: Settings, session: Session, writer: LogWriter,
                      following: int) -> int:
    """The appender pass's first step: record the queued key entries from index ``following`` on,
    to append before captures. Returns how many were recorded."""
    return record_queued_entries(settings, session, writer, following)
