"""capture parts, replicas and jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('replicas',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('backend', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('locator', sa.String(length=255), nullable=True),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('next_attempt_at', samizdat.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('stored_at', samizdat.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verified_at', samizdat.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replicas')),
    sa.UniqueConstraint('sha256', 'backend', name=op.f('uq_replicas_sha256'))
    )
    with op.batch_alter_table('replicas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_replicas_next_attempt_at'), ['next_attempt_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_replicas_state'), ['state'], unique=False)

    op.create_table('capture_parts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('capture_id', sa.Integer(), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.ForeignKeyConstraint(['capture_id'], ['captures.id'], name=op.f('fk_capture_parts_capture_id_captures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_capture_parts')),
    sa.UniqueConstraint('capture_id', 'name', name=op.f('uq_capture_parts_capture_id'))
    )
    with op.batch_alter_table('capture_parts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_capture_parts_capture_id'), ['capture_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_capture_parts_sha256'), ['sha256'], unique=False)

    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=100), nullable=True),
    sa.Column('capture_id', sa.Integer(), nullable=True),
    sa.Column('bytes', sa.BigInteger(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', samizdat.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', samizdat.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['capture_id'], ['captures.id'], name=op.f('fk_jobs_capture_id_captures'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_jobs_source_id_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_jobs_source_id'), ['source_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_jobs_state'), ['state'], unique=False)

    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.add_column(sa.Column('charset', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('same_as_id', sa.Integer(), nullable=True))
        # Existing captures predate replica tracking: they start incomplete for reconcile.
        batch_op.add_column(sa.Column('complete', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.create_foreign_key(batch_op.f('fk_captures_same_as_id_captures'), 'captures', ['same_as_id'], ['id'], ondelete='SET NULL')



def downgrade() -> None:
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_captures_same_as_id_captures'), type_='foreignkey')
        batch_op.drop_column('complete')
        batch_op.drop_column('same_as_id')
        batch_op.drop_column('charset')

    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_jobs_state'))
        batch_op.drop_index(batch_op.f('ix_jobs_source_id'))

    op.drop_table('jobs')
    with op.batch_alter_table('capture_parts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_capture_parts_sha256'))
        batch_op.drop_index(batch_op.f('ix_capture_parts_capture_id'))

    op.drop_table('capture_parts')
    with op.batch_alter_table('replicas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_replicas_state'))
        batch_op.drop_index(batch_op.f('ix_replicas_next_attempt_at'))

    op.drop_table('replicas')
