"""which curation decision is at which index of the provenance log

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_decisions",
        sa.Column("log_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("fragment_id", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("text_sha256", sa.String(length=64), nullable=False),
        sa.Column("reviewed_at", samizdat.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("logged_at", samizdat.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("log_index", name=op.f("pk_log_decisions")),
    )
    op.create_index(op.f("ix_log_decisions_fragment_id"), "log_decisions", ["fragment_id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_log_decisions_fragment_id"), table_name="log_decisions")
    op.drop_table("log_decisions")
