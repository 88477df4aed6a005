"""Public registration: events open to it, and the registrations with their ticket codes.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column(
        "marketing_events",
        sa.Column("registration_open", sa.Boolean, nullable=False, server_default=text("false")),
    )
    op.create_table(
        "registrations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("campaign_id", sa.Uuid, sa.ForeignKey("marketing_events.id"), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("last_name", sa.String(200), nullable=False),
        sa.Column("first_name", sa.String(200), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("organization_name", sa.String(500), nullable=False),
        sa.Column("inn", sa.String(12)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("organization_id", sa.Uuid),
        sa.Column("participant_id", sa.Uuid, sa.ForeignKey("participants.id")),
        sa.Column(
            "registered_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("checked_in_at", sa.DateTime(timezone=True)),
        sa.Column("checked_in_by", sa.String(200)),
    )
    op.create_index("ix_registrations_campaign", "registrations", ["campaign_id", "registered_at"])


def downgrade() -> None:
    op.drop_table("registrations")
    op.drop_column("marketing_events", "registration_open")
