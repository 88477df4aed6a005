"""Recent trigger events of automation, for testing a rule against them (ADR 35).

Revision ID: 0014_automation_recent_events
"""

from alembic import op
from sqlalchemy import Column, DateTime, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014_automation_recent_events"
down_revision = "0013_automation_hook_secret"


def upgrade() -> None:
    op.create_table(
        "automation_recent_events",
        Column("event_id", Uuid, primary_key=True),
        Column("pipeline_id", Uuid, nullable=False),
        Column("deal_id", Uuid, nullable=False),
        Column("event_type", String(200), nullable=False),
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("occurrences", JSONB, nullable=False),
        Column("recorded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    op.create_index(
        "ix_automation_recent_events_pipeline",
        "automation_recent_events",
        ["pipeline_id", "occurred_at"],
    )
    op.create_index(
        "ix_automation_recent_events_recorded", "automation_recent_events", ["recorded_at"]
    )


def downgrade() -> None:
    op.drop_table("automation_recent_events")
