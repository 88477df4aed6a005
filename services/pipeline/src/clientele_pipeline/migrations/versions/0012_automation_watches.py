"""Watched triggers of automation: date fields and inactivity (ADR 25, amended).

Revision ID: 0012_automation_watches
"""

from alembic import op
from sqlalchemy import Column, DateTime, ForeignKey, PrimaryKeyConstraint, String, Uuid

revision = "0012_automation_watches"
down_revision = "0011_automation_calendars"


def upgrade() -> None:
    op.create_table(
        "automation_watches",
        Column("rule_id", Uuid, ForeignKey("automation_rules.id"), nullable=False),
        Column("deal_id", Uuid, nullable=False),
        Column("due_at", DateTime(timezone=True), nullable=False),
        Column("basis", String(100), nullable=False),
        PrimaryKeyConstraint("rule_id", "deal_id"),
    )
    op.create_index("ix_automation_watches_due", "automation_watches", ["due_at"])
    op.create_index("ix_automation_watches_deal", "automation_watches", ["deal_id"])


def downgrade() -> None:
    op.drop_table("automation_watches")
