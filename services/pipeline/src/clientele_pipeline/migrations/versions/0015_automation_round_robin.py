"""Round-robin turns of automation rules that create tasks.

Revision ID: 0015_automation_round_robin
"""

from alembic import op
from sqlalchemy import BigInteger, Column, Uuid

revision = "0015_automation_round_robin"
down_revision = "0014_automation_recent_events"


def upgrade() -> None:
    op.create_table(
        "automation_round_robin",
        Column("rule_id", Uuid, primary_key=True),
        Column("turns", BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("automation_round_robin")
