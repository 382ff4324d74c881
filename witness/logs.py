"""The logs a witness witnesses: a file of ``<origin> <log vkey>`` lines, re-read when it changes.

A line may end with ``revoked-from=<N>``: that log key no longer vouches, alone, for a checkpoint
of size N or more (the operator copies N from the log's revocation entry: its index + 1). The
operator edits the file (or runs ``flask witness add-log`` / ``revoke-log-key``); every web
worker sees the change on its next request, without a restart.
"""

from __future__ import annotations

import fcntl
import os
import re
import tempfile
import threading
from pathlib import Path

from provenance.errors import NoteError
from provenance.note import Ed25519Verifier

_REVOKED = re.compile(r"revoked-from=(0|[1-9][0-9]{0,18})")


class WitnessConfigError(ValueError):
    """The witnessed-logs file cannot be read or holds a line that is not
    ``<origin> <vkey> [revoked-from=<N>]``."""


def parse_line(line: str, number: int = 0) -> tuple[str, Ed25519Verifier, int | None] | None:
    """One line as (origin, log key, the size it is revoked from or None); None for a blank line
    or a ``#`` comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    rest, _, last = text.rpartition(" ")
    revoked = _REVOKED.fullmatch(last)  # a vkey always holds a "+", so it never matches
    if revoked:
        text = rest.rstrip()
    origin, space, vkey = text.rpartition(" ")  # a vkey holds no space; an origin might
    origin = origin.strip()
    where = f"line {number}: " if number else ""
    if not space or not origin or not origin.isprintable():
        raise WitnessConfigError(f"{where}expected '<origin> <log vkey> [revoked-from=<size>]', "
                                 f"got {line.strip()[:120]!r}")
    try:
        verifier = Ed25519Verifier.from_vkey(vkey)
    except NoteError as exc:
        raise WitnessConfigError(f"{where}{exc}") from None
    return origin, verifier, int(revoked.group(1)) if revoked else None


def parse_file(text: str
               ) -> tuple[dict[str, tuple[Ed25519Verifier, ...]], dict[str, dict[str, int]]]:
    """Every origin with the keys trusted to sign its checkpoints (several during a rotation),
    and per origin each revoked key's vkey with the smallest size it is revoked from."""
    logs: dict[str, list[Ed25519Verifier]] = {}
    revoked: dict[str, dict[str, int]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parsed = parse_line(line, number)
        if parsed is None:
            continue
        origin, verifier, from_size = parsed
        keys = logs.setdefault(origin, [])
        if all(k.vkey != verifier.vkey for k in keys):
            keys.append(verifier)
        if from_size is not None:
            # The earliest revocation counts, as in the log: no line un-revokes a key.
            sizes = revoked.setdefault(origin, {})
            sizes[verifier.vkey] = min(from_size, sizes.get(verifier.vkey, from_size))
    return {origin: tuple(keys) for origin, keys in logs.items()}, revoked


def parse_logs(text: str) -> dict[str, tuple[Ed25519Verifier, ...]]:
    """Every origin and the keys trusted to sign its checkpoints (several during a rotation)."""
    return parse_file(text)[0]


class WitnessedLogs:
    """The witnessed-logs file, parsed, cached until the file changes (any worker, any process)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._logs: dict[str, tuple[Ed25519Verifier, ...]] = {}
        self._revoked: dict[str, dict[str, int]] = {}

    def current(self) -> dict[str, tuple[Ed25519Verifier, ...]]:
        """The logs as the file says now; an absent file witnesses nothing. WitnessConfigError
        when the file is unreadable or malformed (then nothing is cosigned)."""
        return self._read()[0]

    def _read(self) -> tuple[dict[str, tuple[Ed25519Verifier, ...]], dict[str, dict[str, int]]]:
        """The keys and revocations as the file says now (see :meth:`current`)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}, {}
        except OSError as exc:
            raise WitnessConfigError(f"cannot read {self.path}: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise WitnessConfigError(f"cannot read {self.path}: {exc}") from None
                self._logs, self._revoked = parse_file(text)
                self._stamp = stamp
            return self._logs, self._revoked

    def verifiers(self, origin: str) -> tuple[Ed25519Verifier, ...]:
        """The keys trusted for ``origin``; empty when it is not witnessed."""
        return self.current().get(origin, ())

    def revoked_from(self, origin: str) -> dict[str, int]:
        """Each revoked key (vkey) of ``origin`` and the smallest checkpoint size it no longer
        vouches for; empty when none is revoked."""
        return self._read()[1].get(origin, {})


def _append_line(path: Path, line: str, already) -> bool:
    """Append ``line`` to the file (made if absent) atomically, under a lock, unless
    ``already(text)`` says the file already says it; False then."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two commands at once must not lose a line
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if already(text):
            return False
        if text and not text.endswith("\n"):
            text += "\n"
        text += line + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    return True


def add_log(path: Path, origin: str, vkey: str) -> bool:
    """Add ``<origin> <vkey>`` to the file (made if absent), atomically; False if already there."""
    origin = origin.strip()
    parse_line(f"{origin} {vkey}")  # refuses a bad origin or key before anything is written
    return _append_line(path, f"{origin} {vkey}",
                        lambda text: any(k.vkey == vkey for k in parse_logs(text).get(origin, ())))


def revoke_log_key(path: Path, origin: str, vkey: str, from_size: int) -> bool:
    """Add ``<origin> <vkey> revoked-from=<from_size>``: the key, already listed for the origin,
    alone no longer vouches for a checkpoint of that size or more. False if the file already
    revokes it from that size or earlier; WitnessConfigError if the key is not listed."""
    origin = origin.strip()
    line = f"{origin} {vkey} revoked-from={from_size}"
    _, verifier, _ = parse_line(line)  # refuses a bad origin, key or size before any write
    label = f"{verifier.name}+{verifier.key_id:08x}"

    def already(text: str) -> bool:
        logs, revoked = parse_file(text)
        if all(k.vkey != vkey for k in logs.get(origin, ())):
            raise WitnessConfigError(f"{origin} is not witnessed with the key {label}: "
                                     f"nothing to revoke")
        return revoked.get(origin, {}).get(vkey, from_size + 1) <= from_size

    return _append_line(path, line, already)
