"""A rule's inbound webhook secret (ADR 25, amended).

Revision ID: 0013_automation_hook_secret
"""

from alembic import op
from sqlalchemy import Column, String

revision = "0013_automation_hook_secret"
down_revision = "0012_automation_watches"


def upgrade() -> None:
    op.add_column("automation_rules", Column("hook_secret", String(100)))


def downgrade() -> None:
    op.drop_column("automation_rules", "hook_secret")
