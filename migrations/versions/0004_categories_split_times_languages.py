"""source categories, when each capture was split, fragment languages

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.add_column(sa.Column('category_code', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('category_description', sa.String(length=255), nullable=True))
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('split_at', samizdat.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=16), nullable=True))
    # Captures made before this revision were split as they were taken.
    op.execute("UPDATE captures SET split_at = fetched_at WHERE status = 'ok'")


def downgrade() -> None:
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_column('split_at')
    with op.batch_alter_table('sources', schema=None) as batch_op:
        batch_op.drop_column('category_description')
        batch_op.drop_column('category_code')
