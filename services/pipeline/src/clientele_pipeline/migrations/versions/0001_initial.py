"""Pipelines, outbox and inbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from clientele_shared.events.tables import create_backbone_tables, drop_backbone_tables
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_backbone_tables(op.get_bind())
    op.create_table(
        "pipelines",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("stages", JSONB, nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )


def downgrade() -> None:
    op.drop_table("pipelines")
    drop_backbone_tables(op.get_bind())
