"""Files that appear whole: a reader sees the old file or the new one, never a half-written one.

Every writer of a file another process may read at the same moment (packs, records, key files,
stored blobs) goes through here. The data is written under a temporary dotfile name in the same
directory (``.tmp-…``: never published, and a crash's leftover is easy to find) and then renamed
(:func:`write_atomic`) or hard-linked (:func:`create_exclusive`) into place.

The standalone verifier (provenance/verify.py) and the tile writer it imports keep their own few
lines for this: they must run without the app's packages.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

TEMPORARY_PREFIX = ".tmp-"


def _remove(temporary: Path) -> None:
    # Quietly: the error that made us clean up is the one to report.
    with contextlib.suppress(OSError):
        temporary.unlink()


def _write_temporary(path: Path, data: bytes, mode: int | None, sync: bool) -> Path:
    """``data`` in a new temporary file beside ``path``; removed again if writing fails."""
    temporary = path.with_name(f"{TEMPORARY_PREFIX}{secrets.token_hex(6)}-{path.name}")
    # O_EXCL: a fresh name nobody else holds. Created with ``mode`` when one is asked for, so a
    # private key's temporary file is never readable by others, not even while empty.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                 0o666 if mode is None else mode)
    try:
        if mode is not None:
            os.fchmod(fd, mode)  # exact, whatever the umask
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if sync:
                out.flush()
                os.fsync(out.fileno())
    except BaseException:
        _remove(temporary)
        raise
    return temporary


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, sync: bool = False,
                 make_parents: bool = True) -> None:
    """Replace ``path`` with ``data`` in one rename: readers see the old bytes or the new, never
    a half-written file.

    ``mode`` sets the file's permissions exactly (default: a new file's, after the umask);
    ``sync`` puts the bytes on disk before the rename, for files a crash must not empty. OSError
    (disk full, say) leaves no temporary file behind.
    """
    path = Path(path)
    if make_parents:
        path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _write_temporary(path, data, mode, sync)
    try:
        os.replace(temporary, path)
    except BaseException:
        _remove(temporary)
        raise


def create_exclusive(path: Path, data: bytes, *, mode: int | None = None,
                     sync: bool = False) -> bool:
    """Create ``path`` holding ``data`` unless it exists; False, writing nothing, if it does.

    Linked into place once written whole: os.link fails if ``path`` exists, so of several
    processes starting at once exactly one makes the file, and none ever reads another's
    half-written one (creating ``path`` itself with O_EXCL and then writing it let a second
    process read an empty key). The parent directory must exist.
    """
    path = Path(path)
    temporary = _write_temporary(path, data, mode, sync)
    try:
        os.link(temporary, path)
    except FileExistsError:
        return False
    finally:
        _remove(temporary)
    return True

