"""capture modes: how each source is captured (http, browser, auto) and how each capture was

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08
"""

from alembic import op
import sqlalchemy as sa


revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing source gets the default, auto: HTTP first, the browser when the page
    # looks script-built. Old captures were all made over HTTP, but saying so would claim a
    # decision nobody recorded: their method stays null ("not recorded").
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("capture_mode", sa.String(length=16), nullable=False, server_default="auto")
        )
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("capture_method", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("method_reason", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("limited_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("captures", schema=None) as batch_op:
        batch_op.drop_column("limited_by")
        batch_op.drop_column("method_reason")
        batch_op.drop_column("capture_method")
    with op.batch_alter_table("sources", schema=None) as batch_op:
        batch_op.drop_column("capture_mode")
