"""One active scheduler per database: a PostgreSQL advisory lock, or a lock file for SQLite.

A second scheduler started against the same database waits as a standby and takes over when the
first one dies (its lock is released by the database or the kernel when its process goes away).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine, make_url

from config.settings import Settings


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class LeaderLock:
    """Try to become the one active scheduler; ``acquire`` never blocks."""

    def __init__(self, settings: Settings, engine: Engine, name: str = "samizdat.scheduler"):
        self.engine = engine
        self.name = name
        self.url = make_url(settings.sqlalchemy_url)
        self._conn: Connection | None = None
        self._fd: int | None = None
        if self.url.get_backend_name() == "sqlite":
            database = self.url.database or ""
            base = Path(database) if database and database != ":memory:" else settings.data_dir / "memory"
            self.lock_path = Path(f"{base}.{name}.lock")
        else:
            self.lock_path = None

    @property
    def held(self) -> bool:
        """Whether this process holds the lock."""
        return self._conn is not None or self._fd is not None

    def acquire(self) -> bool:
        """Take the lock if it is free; return whether this process now holds it."""
        if self.held:
            return True
        if self.lock_path is not None:
            self.lock_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
            self._fd = fd
            return True
        # The advisory lock lives as long as this dedicated connection (its session) does.
        conn = self.engine.connect()
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _lock_key(self.name)}).scalar()
        conn.commit()
        if got:
            self._conn = conn
            return True
        conn.close()
        return False

    def still_held(self) -> bool:
        """Check the lock is still ours (a PostgreSQL connection can be lost)."""
        if self._fd is not None:
            return True
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
            return True
        except Exception:
            self._conn = None
            return False

    def release(self) -> None:
        """Give the lock up."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        if self._conn is not None:
            try:
                self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _lock_key(self.name)})
                self._conn.commit()
            finally:
                self._conn.close()
                self._conn = None


def leader_present(settings: Settings, engine: Engine, name: str = "samizdat.scheduler") -> bool:
    """Whether some process (this one included) holds the scheduler's lock right now.

    PostgreSQL: the advisory lock in ``pg_locks`` (its 64-bit key is split into classid and
    objid). SQLite: a shared ``flock`` tried without blocking on the lock file, released at once;
    a scheduler starting in that instant stands by for one retry interval.
    """
    lock = LeaderLock(settings, engine, name)
    if lock.lock_path is not None:
        try:
            fd = os.open(lock.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing also drops a shared lock we took
        return False
    key = _lock_key(name) & 0xFFFFFFFFFFFFFFFF
    with engine.connect() as conn:
        return bool(conn.execute(
            text(
                "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND classid = CAST(CAST(:high AS BIGINT) AS OID)"
                " AND objid = CAST(CAST(:low AS BIGINT) AS OID) AND objsubid = 1)"
            ),
            {"high": key >> 32, "low": key & 0xFFFFFFFF},
        ).scalar())
