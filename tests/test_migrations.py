"""Alembic migrations bring both databases to the schema the models describe."""

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from samizdat import migrate
from samizdat.db import Base, import_all_models, include_in_comparison


def test_upgrade_creates_every_table_and_matches_the_models(database_url):
    import_all_models()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert {"sources", "captures", "fragments"} <= set(inspect(conn).get_table_names())
        # Engine-specific search structures (FTS5 tables, a tsvector column) are not modelled.
        context = MigrationContext.configure(conn, opts={"include_name": include_in_comparison})
        diff = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert migrate.current_revision(database_url) is not None


def test_sqlite_runs_in_wal_mode(tmp_path):
    from samizdat.db import make_engine

    url = f"sqlite:///{tmp_path / 'wal.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()


def test_downgrade_to_base_and_back(tmp_path):
    url = f"sqlite:///{tmp_path / 'roundtrip.db'}"
    migrate.upgrade(url)
    migrate.downgrade(url, "base")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert "sources" not in inspect(conn).get_table_names()
    engine.dispose()
    migrate.upgrade(url)
    assert migrate.current_revision(url) is not None
