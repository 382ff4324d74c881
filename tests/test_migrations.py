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


def test_sources_of_before_0012_become_auto_and_their_captures_record_no_method(database_url):
    migrate.downgrade(database_url, "0011")
    try:
        engine = create_engine(database_url)
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO sources (id, url, interval_minutes, active, created_at) "
                "VALUES (7, 'https://old.example/', 60, true, '2026-01-01 00:00:00')"))
            conn.execute(text(
                "INSERT INTO captures (id, source_id, status, url, fetched_at, complete) "
                "VALUES (9, 7, 'ok', 'https://old.example/', '2026-01-01 00:00:00', true)"))
        migrate.upgrade(database_url)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT capture_mode FROM sources WHERE id = 7")).scalar() == "auto"
            method = conn.execute(text(
                "SELECT capture_method, method_reason, limited_by FROM captures WHERE id = 9")).one()
            assert tuple(method) == (None, None, None)
        engine.dispose()
    finally:
        migrate.upgrade(database_url)
