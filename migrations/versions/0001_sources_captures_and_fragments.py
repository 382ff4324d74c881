"""sources, captures and fragments

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""
from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('sources',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('collection', sa.String(length=100), nullable=True),
    sa.Column('interval_minutes', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sources')),
    sa.UniqueConstraint('url', name=op.f('uq_sources_url'))
    )
    op.create_table('captures',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('url', sa.String(length=2048), nullable=False),
    sa.Column('final_url', sa.String(length=2048), nullable=True),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('content_type', sa.String(length=255), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('local_key', sa.String(length=255), nullable=True),
    sa.Column('s3_key', sa.String(length=255), nullable=True),
    sa.Column('cid', sa.String(length=128), nullable=True),
    sa.Column('error_reason', sa.String(length=64), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('fetched_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['source_id'], ['sources.id'], name=op.f('fk_captures_source_id_sources'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_captures'))
    )
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_captures_fetched_at'), ['fetched_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_captures_sha256'), ['sha256'], unique=False)
        batch_op.create_index(batch_op.f('ix_captures_source_id'), ['source_id'], unique=False)

    op.create_table('fragments',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('capture_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('source_url', sa.String(length=2048), nullable=False),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('cid', sa.String(length=128), nullable=True),
    sa.Column('fetched_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_at', samizdat.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['capture_id'], ['captures.id'], name=op.f('fk_fragments_capture_id_captures'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fragments'))
    )
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fragments_capture_id'), ['capture_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_fragments_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('fragments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fragments_status'))
        batch_op.drop_index(batch_op.f('ix_fragments_capture_id'))

    op.drop_table('fragments')
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_captures_source_id'))
        batch_op.drop_index(batch_op.f('ix_captures_sha256'))
        batch_op.drop_index(batch_op.f('ix_captures_fetched_at'))

    op.drop_table('captures')
    op.drop_table('sources')
