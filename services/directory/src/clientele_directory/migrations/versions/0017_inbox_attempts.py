"""Crash-attempt marks of the inbox (see clientele_shared.events.inbox.EventConsumer).

Revision ID: 0017
"""

from alembic import op
from clientele_shared.events.tables import create_inbox_attempts_table, drop_inbox_attempts_table

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    create_inbox_attempts_table(op.get_bind())


def downgrade() -> None:
    drop_inbox_attempts_table(op.get_bind())
