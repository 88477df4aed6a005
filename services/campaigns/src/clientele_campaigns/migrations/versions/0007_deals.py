"""The pipeline's deals as a read model, for attributing deals to marketing events.

Revision ID: 0007_deals
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0007_deals"
down_revision = "0006_documents"


def upgrade() -> None:
    op.create_table(
        "deals",
        sa.Column("deal_id", sa.Uuid, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("organization_id", sa.Uuid, nullable=False),
        sa.Column("campaign_id", sa.Uuid),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("amount", sa.Numeric(18, 2)),
        sa.Column("currency", sa.String(3)),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True)),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=text("false")),
    )
    op.create_index("ix_deals_campaign", "deals", ["campaign_id"])
    op.create_index("ix_deals_organization_opened", "deals", ["organization_id", "opened_at"])


def downgrade() -> None:
    op.drop_table("deals")
