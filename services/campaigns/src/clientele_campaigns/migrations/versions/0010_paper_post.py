"""Paper mailings (ADR 46): a mailing's envelopes and letterhead, its print run, and the
organizations' postal addresses and fax numbers.

Revision ID: 0010_paper_post
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010_paper_post"
down_revision = "0009_resolution_kind"


def upgrade() -> None:
    op.add_column("mailings", sa.Column("post", JSONB))
    op.add_column("mailings", sa.Column("letterhead", JSONB))
    op.create_table(
        "mailing_prints",
        sa.Column("mailing_id", sa.Uuid, sa.ForeignKey("mailings.id"), primary_key=True),
        sa.Column("campaign_id", sa.Uuid),
        sa.Column("letters", sa.Integer, nullable=False),
        sa.Column("pages", sa.Integer, nullable=False),
        sa.Column("sheets", sa.Integer, nullable=False),
        sa.Column("envelope", sa.String(10), nullable=False),
        sa.Column("envelopes", sa.Integer, nullable=False),
        sa.Column("toner_cartridges", sa.Numeric(12, 2), nullable=False),
        sa.Column(
            "printed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("ix_mailing_prints_campaign", "mailing_prints", ["campaign_id"])
    op.create_table(
        "mailing_organizations",
        sa.Column("organization_id", sa.Uuid, primary_key=True),
        sa.Column("postal_address", JSONB),
        sa.Column("fax", sa.String(40)),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("state_revision", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mailing_organizations")
    op.drop_table("mailing_prints")
    op.drop_column("mailings", "letterhead")
    op.drop_column("mailings", "post")
