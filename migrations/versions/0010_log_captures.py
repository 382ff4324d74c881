"""which capture is at which index of the provenance log

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa
import samizdat.db


revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_captures",
        sa.Column("log_index", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("capture_id", sa.Integer(), nullable=True),
        sa.Column("entry", sa.Text(), nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("logged_at", samizdat.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["capture_id"], ["captures.id"],
            name=op.f("fk_log_captures_capture_id_captures"), ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("log_index", name=op.f("pk_log_captures")),
        sa.UniqueConstraint("capture_id", name=op.f("uq_log_captures_capture_id")),
    )


def downgrade() -> None:
    op.drop_table("log_captures")
