"""capture stats index: the reader's listing groups successful captures per source

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The listing and the front page count each source's captures by status and take the last
    # fetch time: with this index that GROUP BY reads the index alone, never the wide rows.
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.create_index(
            'ix_captures_source_id_status_fetched_at',
            ['source_id', 'status', 'fetched_at'],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_index('ix_captures_source_id_status_fetched_at')
