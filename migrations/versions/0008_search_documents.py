"""search: one document per source (latest successful capture's text), FTS5 or tsvector + GIN

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Written out rather than imported from archive/: a migration must keep meaning what it meant.
_FTS = 'search_fts'
_CONFIG = 'samizdat_search'


def upgrade() -> None:
    op.create_table('search_documents',
    sa.Column('source_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('capture_id', sa.Integer(), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('fetched_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('processed_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('indexed_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['capture_id'], ['captures.id'], name=op.f('fk_search_documents_capture_id_captures'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_search_documents_source_id_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('source_id', name=op.f('pk_search_documents'))
    )
    with op.batch_alter_table('search_documents', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_search_documents_capture_id'), ['capture_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_search_documents_processed_at'), ['processed_at'], unique=False)

    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        # unicode61 folds case and, with remove_diacritics 2, every accent Vietnamese uses; the
        # indexer folds the letters it leaves alone (đ → d). The table keeps its own (folded)
        # copy: SQLite 3.40 has no contentless delete, and snippets come from search_documents.
        op.execute(
            f"CREATE VIRTUAL TABLE {_FTS} USING fts5(title, body, "
            "tokenize = 'unicode61 remove_diacritics 2')"
        )
        # The default rank: bm25 with a title match worth ten in the text.
        op.execute(f"INSERT INTO {_FTS}({_FTS}, rank) VALUES ('rank', 'bm25(10.0, 1.0)')")
    elif dialect == 'postgresql':
        op.execute('CREATE EXTENSION IF NOT EXISTS unaccent')
        # simple (no stemming: the texts are in many languages) after unaccent, which also folds
        # đ → d; to_tsvector with a constant configuration is immutable, so the column can be
        # generated and is never out of step with its row.
        op.execute(f'CREATE TEXT SEARCH CONFIGURATION {_CONFIG} (COPY = simple)')
        op.execute(
            f'ALTER TEXT SEARCH CONFIGURATION {_CONFIG} '
            'ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple'
        )
        op.execute(
            "ALTER TABLE search_documents ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ("
            f"setweight(to_tsvector('{_CONFIG}'::regconfig, coalesce(title, '')), 'A') || "
            f"setweight(to_tsvector('{_CONFIG}'::regconfig, body), 'D')) STORED"
        )
        op.execute(
            'CREATE INDEX ix_search_documents_search_vector ON search_documents USING gin (search_vector)'
        )


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        op.execute(f'DROP TABLE IF EXISTS {_FTS}')
    with op.batch_alter_table('search_documents', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_search_documents_processed_at'))
        batch_op.drop_index(batch_op.f('ix_search_documents_capture_id'))
    op.drop_table('search_documents')
    if dialect == 'postgresql':
        op.execute(f'DROP TEXT SEARCH CONFIGURATION IF EXISTS {_CONFIG}')
        # The unaccent extension stays: it may have been there before, for someone else.
