"""The one declarative base every table shares, and engine/session construction.

Low and neutral on purpose: mirror and fragments both define tables on :class:`Base` without
importing each other.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import DateTime, MetaData, create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, sessionmaker
from sqlalchemy.types import TypeDecorator

# Deterministic constraint names keep Alembic migrations portable between SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Every id column is a 32-bit INTEGER on PostgreSQL: a larger id cannot exist, and sending one
# to the database is an error there (an overflow on SQLite past 2**63), not "not found".
MAX_DB_INT = 2**31 - 1

# Base.metadata.info[UNMODELLED_KEY]: names a migration creates for one engine only and no model
# describes (an FTS5 table and its shadow tables, a generated tsvector column, its index), as
# "table" or "table.column_or_index"; comparisons of models and database skip them.
UNMODELLED_KEY = "unmodelled"


class Base(DeclarativeBase):
    """Declarative base for all Samizdat tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use utcnow()")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


# Seconds to wait for a PostgreSQL connection: far below gunicorn's worker timeout.
DB_CONNECT_TIMEOUT = 5


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL mode and foreign keys so readers never block the writer."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        return engine
    # Pre-ping replaces connections a database restart broke, so the app heals by itself; a
    # connect timeout bounds a request when the server is unreachable rather than refusing.
    return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": DB_CONNECT_TIMEOUT})


def make_sessionmaker(engine: Engine, info: dict | None = None) -> sessionmaker:
    """A session factory bound to ``engine``; objects stay usable after commit.

    ``info`` becomes every session's ``Session.info`` (the runtime puts its settings there).
    """
    return sessionmaker(bind=engine, expire_on_commit=False, info=info or {})


def import_all_models() -> None:
    """Import every module that defines tables so ``Base.metadata`` is complete (Alembic needs it)."""
    import accounts.models  # noqa: F401
    # The one import of archive outside the app factory: its search table is on the shared base,
    # and the migrations and their tests need every table. Nothing runs at import.
    import archive.models  # noqa: F401
    import fragments.models  # noqa: F401
    import mirror.models  # noqa: F401
    import provenance.models  # noqa: F401


def include_in_comparison(name: str | None, type_: str, parent_names: dict) -> bool:
    """Alembic ``include_name`` hook: False for what Base.metadata.info lists as unmodelled."""
    unmodelled = Base.metadata.info.get(UNMODELLED_KEY, set())
    if type_ == "table":
        return name not in unmodelled
    return f"{parent_names.get('table_name')}.{name}" not in unmodelled
