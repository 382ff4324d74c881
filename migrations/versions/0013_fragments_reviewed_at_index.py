"""an index on fragments.reviewed_at, for the log's decision pass

The scheduler's pass (provenance.decisions.new_decision_rows) reads the newest review stamp and
the fragments reviewed since the last one it saw every 30 s; with this index both cost a few index
pages instead of a scan of every fragment.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08
"""

from alembic import op


revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_fragments_reviewed_at"), "fragments", ["reviewed_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fragments_reviewed_at"), table_name="fragments")
