"""Organizations, outbox and inbox.

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
        "organizations",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("legal_name", sa.String(500), nullable=False),
        sa.Column("short_name", sa.String(500)),
        sa.Column("inn", sa.String(12)),
        sa.Column("ogrn", sa.String(15)),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_organizations_inn", "organizations", ["inn"])
    op.create_index(
        "ix_organizations_directions", "organizations", ["directions"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_table("organizations")
    drop_backbone_tables(op.get_bind())
