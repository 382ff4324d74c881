"""Alembic environment: the shared declarative metadata, SQLite in batch mode."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from samizdat.db import Base, import_all_models, include_in_comparison

import_all_models()
target_metadata = Base.metadata
config = context.config


def run_migrations_offline() -> None:
    """Emit SQL without a connection (alembic upgrade --sql)."""
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        include_name=include_in_comparison,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run migrations against a live connection."""
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        # Batch mode lets ALTER TABLE work on SQLite, which cannot alter most things in place.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True,
            include_name=include_in_comparison,
        )
        with context.begin_transaction():
            context.run_migrations()
    connectable.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
