"""The logs a witness witnesses: a file of ``<origin> <log vkey>`` lines, re-read when it changes.

The operator edits it (or runs ``flask witness add-log``); every web worker sees the change on
its next request, without a restart.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
from pathlib import Path

from provenance.errors import NoteError
from provenance.note import Ed25519Verifier


class WitnessConfigError(ValueError):
    """The witnessed-logs file cannot be read or holds a line that is not ``<origin> <vkey>``."""


def parse_line(line: str, number: int = 0) -> tuple[str, Ed25519Verifier] | None:
    """One line as (origin, log key); None for a blank line or a ``#`` comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    origin, space, vkey = text.rpartition(" ")  # a vkey holds no space; an origin might
    origin = origin.strip()
    where = f"line {number}: " if number else ""
    if not space or not origin or not origin.isprintable():
        raise WitnessConfigError(f"{where}expected '<origin> <log vkey>', got {text[:120]!r}")
    try:
        return origin, Ed25519Verifier.from_vkey(vkey)
    except NoteError as exc:
        raise WitnessConfigError(f"{where}{exc}") from None


def parse_logs(text: str) -> dict[str, tuple[Ed25519Verifier, ...]]:
    """Every origin and the keys trusted to sign its checkpoints (several during a rotation)."""
    logs: dict[str, list[Ed25519Verifier]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        parsed = parse_line(line, number)
        if parsed is not None:
            origin, verifier = parsed
            keys = logs.setdefault(origin, [])
            if all(k.vkey != verifier.vkey for k in keys):
                keys.append(verifier)
    return {origin: tuple(keys) for origin, keys in logs.items()}


class WitnessedLogs:
    """The witnessed-logs file, parsed, cached until the file changes (any worker, any process)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._logs: dict[str, tuple[Ed25519Verifier, ...]] = {}

    def current(self) -> dict[str, tuple[Ed25519Verifier, ...]]:
        """The logs as the file says now; an absent file witnesses nothing. WitnessConfigError
        when the file is unreadable or malformed (then nothing is cosigned)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise WitnessConfigError(f"cannot read {self.path}: {exc.strerror}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if stamp != self._stamp:
                try:
                    text = self.path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as exc:
                    raise WitnessConfigError(f"cannot read {self.path}: {exc}") from None
                self._logs = parse_logs(text)
                self._stamp = stamp
            return self._logs

    def verifiers(self, origin: str) -> tuple[Ed25519Verifier, ...]:
        """The keys trusted for ``origin``; empty when it is not witnessed."""
        return self.current().get(origin, ())


def add_log(path: Path, origin: str, vkey: str) -> bool:
    """Add ``<origin> <vkey>`` to the file (made if absent), atomically; False if already there."""
    origin = origin.strip()
    parse_line(f"{origin} {vkey}")  # refuses a bad origin or key before anything is written
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two add-log commands at once must not lose a line
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        logs = parse_logs(text)
        if any(k.vkey == vkey for k in logs.get(origin, ())):
            return False
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"{origin} {vkey}\n"
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
