"""Business calendars of automation: the company's and each direction's (ADR 34).

Revision ID: 0011_automation_calendars
"""

from alembic import op
from sqlalchemy import Column, DateTime, Integer, String, func, text
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011_automation_calendars"
down_revision = "0010_board_responsible"


def upgrade() -> None:
    op.create_table(
        "automation_calendars",
        Column("scope", String(64), primary_key=True),
        Column("settings", JSONB),
        Column("days", JSONB, nullable=False, server_default=text("'{}'")),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_by", String(200), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("automation_calendars")
