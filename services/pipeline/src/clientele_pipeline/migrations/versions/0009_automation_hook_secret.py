"""A rule's inbound webhook secret (ADR 25, amended).

Revision ID: 0009
"""

from alembic import op
from sqlalchemy import Column, String

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column("automation_rules", Column("hook_secret", String(100)))


def downgrade() -> None:
    op.drop_column("automation_rules", "hook_secret")
