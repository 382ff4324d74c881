"""leases and revocation: job heartbeats, capture processing, session versions, fragment edits

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""
from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('heartbeat_at', samizdat.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('worker', sa.String(length=100), nullable=True))
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('processed_at', samizdat.db.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('session_version', sa.Integer(), nullable=False, server_default='0')
        )
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edited_at', samizdat.db.UTCDateTime(timezone=True), nullable=True))
    # Captures split before this revision were processed whole (split and offline copy in one
    # commit), so their claim time stands for their processing time.
    op.execute("UPDATE captures SET processed_at = split_at WHERE split_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.drop_column('edited_at')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('session_version')
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_column('processed_at')
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('worker')
        batch_op.drop_column('heartbeat_at')
