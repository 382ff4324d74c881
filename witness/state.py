"""What a witness remembers per log: the last checkpoint it cosigned (size and root hash).

One JSON file per origin under ``DATA_DIR/witness/``, named by a hash of the origin. A check and
the update it allows happen under an exclusive ``fcntl`` lock on the origin's lock file, and the
new state replaces the old atomically (written, fsynced, renamed), so web workers and processes
racing on one log cannot roll it back (tlog-witness: "checking the old size … and persisting the
new checkpoint must be performed atomically").
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provenance.merkle import EMPTY_ROOT, HASH_SIZE
from samizdat.paths import confined_file


MAX_REFUSED = 100  # kept refused checkpoints per log and kind: enough to show a fork, bounded
REFUSED_KINDS = ("fork", "unproven")


class WitnessStateError(RuntimeError):
    """A log's stored state cannot be read: the witness cosigns nothing for it until fixed."""


@dataclass(frozen=True)
class Witnessed:
    """The latest checkpoint a witness cosigned for one log (size 0, empty root: none yet)."""

    origin: str
    size: int
    root_hash: bytes
    updated: int = 0  # Unix time of the cosignature; 0: never


def _file_stem(origin: str) -> str:
    """A file name for ``origin`` that no origin can turn into a path: its hash."""
    return hashlib.sha256(origin.encode()).hexdigest()[:32]


class WitnessState:
    """The per-log state files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, origin: str, suffix: str) -> Path:
        return confined_file(self.directory, _file_stem(origin) + suffix)

    def read(self, origin: str) -> Witnessed:
        """The stored state of ``origin`` (size 0 if never cosigned); WitnessStateError if unusable."""
        path = self._path(origin, ".json")
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return Witnessed(origin, 0, EMPTY_ROOT)
        except (OSError, ValueError) as exc:
            raise WitnessStateError(f"the state of {origin} in {path} is unreadable: {exc}") from None
        try:
            size, root = data["size"], base64.b64decode(data["root"], validate=True)
            if data["origin"] != origin or not isinstance(size, int) or size < 0 \
                    or len(root) != HASH_SIZE:
                raise ValueError("unexpected values")
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise WitnessStateError(f"the state of {origin} in {path} is malformed: {exc}") from None
        return Witnessed(origin, size, root, int(data.get("updated", 0)))

    @contextmanager
    def locked(self, origin: str) -> Iterator[Witnessed]:
        """Hold ``origin``'s lock while the caller checks the state it yields and maybe saves."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self._path(origin, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, even on error
            yield self.read(origin)

    def save(self, origin: str, size: int, root_hash: bytes, checkpoint: str) -> None:
        """Replace ``origin``'s state atomically; call only inside :meth:`locked` for it."""
        current = self.read(origin)
        if size < current.size:  # the last guard: whatever a caller does, never backwards
            raise WitnessStateError(f"refusing to move {origin} back from {current.size} to {size}")
        record = {"origin": origin, "size": size,
                  "root": base64.b64encode(root_hash).decode(),
                  "updated": int(time.time()), "checkpoint": checkpoint}
        target = self._path(origin, ".json")
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(record, out, ensure_ascii=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)

    def keep_refused(self, origin: str, note: bytes, kind: str) -> None:
        """Keep a log-signed checkpoint the witness refused (tlog-witness allows keeping it), at
        most MAX_REFUSED per log and kind, each once. ``kind`` is ``fork`` (another root for a
        size cosigned before: proof the log equivocated, which only the log's key can make) or
        ``unproven`` (a failed consistency proof: a fork, or just a bad proof anyone could send
        with a genuine checkpoint — kept apart, so such requests can never crowd out a fork)."""
        if kind not in REFUSED_KINDS:
            raise ValueError(f"unknown kind of refused checkpoint {kind!r}")
        folder = confined_file(self.directory, f"refused/{_file_stem(origin)}/{kind}")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / (hashlib.sha256(note).hexdigest()[:32] + ".note")
        if target.exists() or sum(1 for _ in folder.glob("*.note")) >= MAX_REFUSED:
            return
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            out.write(note)
        os.replace(tmp, target)

    def refused(self, origin: str, kind: str) -> list[Path]:
        """The refused checkpoints of one ``kind`` kept for ``origin``."""
        folder = confined_file(self.directory, f"refused/{_file_stem(origin)}/{kind}")
        return sorted(folder.glob("*.note"))

    def all(self) -> list[Witnessed]:
        """Every log this witness has cosigned, by origin (for ``flask witness status``)."""
        states = []
        for path in sorted(self.directory.glob("*.json")):
            try:
                origin = json.loads(path.read_bytes())["origin"]
                states.append(self.read(origin))
            except (OSError, ValueError, KeyError, TypeError, WitnessStateError):
                continue
        return sorted(states, key=lambda s: s.origin)
