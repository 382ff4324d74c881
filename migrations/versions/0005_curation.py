"""curation: collections, fragment tags, edits and reviews, denormalised attribution

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('auto_approve', sa.Boolean(), nullable=False),
    sa.Column('created_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_collections')),
    sa.UniqueConstraint('name', name=op.f('uq_collections_name'))
    )
    op.create_table('fragment_tags',
    sa.Column('fragment_id', sa.String(length=32), nullable=False),
    sa.Column('tag', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['fragment_id'], ['fragments.id'], name=op.f('fk_fragment_tags_fragment_id_fragments'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('fragment_id', 'tag', name=op.f('pk_fragment_tags'))
    )
    with op.batch_alter_table('fragment_tags', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fragment_tags_tag'), ['tag'], unique=False)

    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('original_text', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('site_name', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('collection', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('category_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('edited_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('reviewed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('reviewed_at', samizdat.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f('ix_fragments_collection'), ['collection'], unique=False)
        batch_op.create_index('ix_fragments_status_fetched_at', ['status', 'fetched_at'], unique=False)
    # Fragments split before this revision take their attribution from their capture's source
    # once, here; from now on the pipeline copies it at split time. Their status is left as it
    # was (they were served as split), so nothing already public disappears.
    for column in ('country', 'collection', 'category_code'):
        op.execute(
            f"UPDATE fragments SET {column} = (SELECT sources.{column} FROM captures "
            f"JOIN sources ON sources.id = captures.source_id "
            f"WHERE captures.id = fragments.capture_id)"
        )


def downgrade() -> None:
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.drop_index('ix_fragments_status_fetched_at')
        batch_op.drop_index(batch_op.f('ix_fragments_collection'))
        batch_op.drop_column('reviewed_at')
        batch_op.drop_column('reviewed_by')
        batch_op.drop_column('edited_by')
        batch_op.drop_column('category_code')
        batch_op.drop_column('collection')
        batch_op.drop_column('country')
        batch_op.drop_column('site_name')
        batch_op.drop_column('original_text')
    with op.batch_alter_table('fragment_tags', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fragment_tags_tag'))
    op.drop_table('fragment_tags')
    op.drop_table('collections')
