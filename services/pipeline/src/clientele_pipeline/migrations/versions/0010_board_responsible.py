"""The board by responsible employee: one index giving both a column's page in board order and
(index-only) the per-stage totals of one employee's deals; it replaces the bare one.

Revision ID: 0010_board_responsible
"""

from alembic import op
from sqlalchemy import text

revision = "0010_board_responsible"
down_revision = "0009_analytics"


def upgrade() -> None:
    op.create_index(
        "ix_deals_board_responsible",
        "deals",
        [
            "pipeline_id",
            "responsible_employee_id",
            "stage_id",
            text("created_at DESC"),
            text("id DESC"),
        ],
        postgresql_include=["currency", "amount", "directions"],
        postgresql_where=text("deleted_at IS NULL AND NOT client_hidden"),
    )
    op.drop_index("ix_deals_responsible", "deals")


def downgrade() -> None:
    op.create_index(
        "ix_deals_responsible",
        "deals",
        ["responsible_employee_id"],
        postgresql_where=text("deleted_at IS NULL"),
    )
    op.drop_index("ix_deals_board_responsible", "deals")
