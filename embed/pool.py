"""A compact per-worker pool of approved fragment ids, so a random pick costs one primary-key lookup.

Counting and OFFSET-scanning the fragments table on every page view grows with the archive (at a
million fragments no request finished within two seconds). Instead each worker keeps the ids of
approved fragments, 16 bytes each, grouped by collection and language, and picks by index in O(1).
The pool is rebuilt in the background when the packs are republished or the log signs a new
checkpoint (the catalogue's and the checkpoint's mtimes, looked at no more than every few seconds) or when it is older than ``max_age``; requests never wait
for a rebuild, except the very first one of a worker and one that finds nothing to pick.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from fragments.models import APPROVED, Fragment
from provenance.decisions import PUBLIC_DECISIONS, logged_public, vouches
from provenance.models import LoggedDecisionRow

log = logging.getLogger(__name__)

ID_BYTES = 16  # fragment ids are 32 hex digits

Key = tuple[str | None, str | None]  # (collection, language); None = any


@dataclass
class PoolSnapshot:
    """Immutable once built: ids per key, and the collections and languages that exist."""

    ids: dict[Key, bytes] = field(default_factory=dict)
    collections: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    built_at: float = 0.0
    stamp: object = None

    def pick(self, key: Key, rng: random.Random | None = None) -> str | None:
        """A uniformly random id among those matching ``key``; None when there are none."""
        blob = self.ids.get(key)
        if not blob:
            return None
        i = (rng or random).randrange(len(blob) // ID_BYTES)
        return blob[i * ID_BYTES:(i + 1) * ID_BYTES].hex()


def build_snapshot(session, stamp: object = None) -> PoolSnapshot:
    """Read every public fragment's id, collection and language once (streamed): approved, and
    approved in the published log (provenance.decisions.logged_public)."""
    buffers: dict[Key, bytearray] = {}
    collections, languages = set(), set()
    rows = session.execute(
        select(Fragment.id, Fragment.collection, Fragment.language)
        .where(logged_public())
        .execution_options(yield_per=10_000)
    )
    for fragment_id, collection, language in rows:
        raw = bytes.fromhex(fragment_id)
        keys = [(None, None)]
        if collection:
            collections.add(collection)
            keys.append((collection, None))
        if language:
            languages.add(language)
            keys.append((None, language))
            if collection:
                keys.append((collection, language))
        for key in keys:
            buffers.setdefault(key, bytearray()).extend(raw)
    return PoolSnapshot(
        {k: bytes(v) for k, v in buffers.items()}, frozenset(collections), frozenset(languages),
        time.monotonic(), stamp,
    )


class FragmentPool:
    """The worker's current snapshot, refreshed in the background when the packs change."""

    def __init__(self, session_factory: Callable, catalog: Path, check_seconds: float = 2.0,
                 max_age: float = 60.0, checkpoint: Path | None = None):
        self._session_factory = session_factory
        # A new checkpoint can make approvals public (or take them down) with no publish.
        self._watched = [catalog] + ([checkpoint] if checkpoint is not None else [])
        self._check_seconds = check_seconds
        self._max_age = max_age
        self._snapshot: PoolSnapshot | None = None
        self._checked_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def _stamp(self) -> tuple:
        stamp = []
        for path in self._watched:
            try:
                info = path.stat()
                # The inode too: files are replaced whole (temp + rename), maybe within one tick.
                stamp.append((info.st_mtime_ns, info.st_ino))
            except OSError:
                stamp.append(None)
        return tuple(stamp)

    def _rebuild(self) -> PoolSnapshot:
        stamp = self._stamp()
        with self._session_factory() as session:
            snapshot = build_snapshot(session, stamp)
        self._snapshot = snapshot
        return snapshot

    def _rebuild_in_background(self) -> None:
        def run():
            try:
                self._rebuild()
            except DBAPIError as exc:
                # The database is away (restarting): keep serving the current snapshot; the
                # next check tries again.
                log.warning("fragment pool not refreshed: %s", str(exc).splitlines()[0])
            finally:
                self._refreshing = False

        threading.Thread(target=run, name="fragment-pool", daemon=True).start()

    def snapshot(self) -> PoolSnapshot:
        """The current snapshot (built now if this worker has none yet)."""
        current = self._snapshot
        if current is None:
            with self._lock:
                return self._snapshot or self._rebuild()
        now = time.monotonic()
        if now - self._checked_at >= self._check_seconds:
            self._checked_at = now
            stale = self._stamp() != current.stamp or now - current.built_at > self._max_age
            with self._lock:
                if stale and not self._refreshing:
                    self._refreshing = True
                    self._rebuild_in_background()
        return current

    def refresh_if_older(self, seconds: float) -> PoolSnapshot:
        """Rebuild now if the snapshot is older than ``seconds`` (an empty pick must not wait for
        the next publish when the first fragments were approved meanwhile)."""
        current = self.snapshot()
        if time.monotonic() - current.built_at < seconds:
            return current
        with self._lock:
            return self._rebuild()

    def invalidate(self) -> None:
        """Forget the snapshot; the next request rebuilds it (after picks that were all stale)."""
        self._snapshot = None


# What the public shape needs (fragments.store.fragment_as_dict), nothing more.
PUBLIC_COLUMNS = ("id", "text", "original_text", "edited_at", "language", "source_url", "title",
                  "site_name", "country", "collection", "capture_id", "sha256", "cid", "fetched_at")


class FragmentRow(NamedTuple("_FragmentRow", [(name, object) for name in PUBLIC_COLUMNS])):
    """An approved fragment's public columns, read without the ORM: building a mapped
    ``Fragment`` costs more than the rest of a random pick together (docs/benchmarks.md)."""

    @property
    def edited(self) -> bool:
        """Whether an archivist changed the text the capture was split into."""
        return self.original_text is not None

    @property
    def split_text(self) -> str:
        """The text as split from the capture: what the archived page really says."""
        return self.original_text if self.original_text is not None else self.text


class FragmentReader:
    """Reads one public fragment by id on a connection of this thread's own: no ORM session.

    Public as provenance.decisions says: approved, and its latest published decision in the log
    is an approval or edit naming the sha256 of its current text (re-checked here, so an edit or
    rejection not yet logged keeps the logged words or takes it down from the next request on).

    The random API's cost per request must stay near a bare Flask view's, so the lookup is one
    prepared statement on a DBAPI connection each thread keeps, in autocommit (no transaction is
    left open to hold back SQLite checkpoints or PostgreSQL vacuum).
    """

    def __init__(self, engine):
        self._engine = engine
        self._local = threading.local()
        mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
        # The columns' own result processors: SQLite hands datetimes back as text, and the
        # project's UTCDateTime adds the time zone; a raw cursor does neither by itself.
        columns = Fragment.__table__.columns
        self._processors = [(i, p) for i, p in enumerate(
            columns[name].type._cached_result_processor(engine.dialect, None) for name in PUBLIC_COLUMNS
        ) if p is not None]
        decisions = LoggedDecisionRow.__tablename__
        public = ", ".join(f"'{d}'" for d in PUBLIC_DECISIONS)
        # One indexed lookup more (log_decisions.fragment_id): the latest published decision.
        self._sql = (f"SELECT {', '.join('f.' + c for c in PUBLIC_COLUMNS)}, d.text_sha256 "
                     f"FROM {Fragment.__tablename__} f JOIN {decisions} d ON d.fragment_id = f.id "
                     f"WHERE f.id = {mark} AND f.status = '{APPROVED}' "
                     f"AND d.decision IN ({public}) AND d.log_index = (SELECT max(log_index) "
                     f"FROM {decisions} WHERE fragment_id = f.id AND published)")

    def _connection(self):
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._engine.raw_connection()
            if self._engine.dialect.name == "postgresql":
                conn.driver_connection.autocommit = True
            self._local.conn = conn
        return conn

    def read(self, fragment_id: str) -> FragmentRow | None:
        """The public fragment with this id, or None."""
        try:
            cursor = self._connection().cursor()
            cursor.execute(self._sql, (fragment_id,))
            row = cursor.fetchone()
            cursor.close()
        except Exception as exc:
            # A broken connection (database restarted) is dropped; the next call opens another.
            conn, self._local.conn = getattr(self._local, "conn", None), None
            if conn is not None:
                conn.invalidate()
            dbapi = self._engine.dialect.loaded_dbapi
            if isinstance(exc, dbapi.Error):
                # Wrapped as SQLAlchemy wraps its own, so the app answers it like any other
                # database error (a lost database is a 503, not a 500).
                raise DBAPIError.instance(
                    self._sql, (fragment_id,), exc, dbapi.Error,
                    connection_invalidated=True, dialect=self._engine.dialect,
                ) from exc
            raise
        if row is None or not vouches(row[PUBLIC_COLUMNS.index("text")], row[-1]):
            return None
        values = list(row[:-1])
        for i, process in self._processors:
            values[i] = process(values[i])
        return FragmentRow(*values)
