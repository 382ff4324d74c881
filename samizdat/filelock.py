"""One at a time: a non-blocking exclusive lock on a lock file, for jobs the CLI and the scheduler
may both start (a log publish, a static export)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def try_lock(path: Path, busy: Exception) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (made if missing) while the block runs; raise ``busy``
    at once if another process holds it.

    flock's lock goes with the open file, so a process that dies releases it: no stale lock to
    clear by hand.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise busy from None
        yield
