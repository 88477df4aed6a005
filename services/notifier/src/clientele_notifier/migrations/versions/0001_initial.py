"""Notifications, outbox and inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from clientele_shared.events.tables import create_backbone_tables, drop_backbone_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_backbone_tables(op.get_bind())
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("recipient", sa.String(200), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("read_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_notifications_recipient", "notifications", ["recipient", "created_at"])


def downgrade() -> None:
    op.drop_table("notifications")
    drop_backbone_tables(op.get_bind())
