"""Client cards, outbox and inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from clientele_shared.events.tables import create_backbone_tables, drop_backbone_tables
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_backbone_tables(op.get_bind())
    op.create_table(
        "client_cards",
        sa.Column("organization_id", sa.Uuid, primary_key=True),
        sa.Column("legal_name", sa.String(500), nullable=False),
        sa.Column("short_name", sa.String(500)),
        sa.Column("inn", sa.String(12)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("client_cards")
    drop_backbone_tables(op.get_bind())
