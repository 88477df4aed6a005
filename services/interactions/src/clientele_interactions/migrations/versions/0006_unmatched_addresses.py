"""Unmatched addresses of captured mail, kept for a person to resolve (link to a person or
dismiss): those of a captured interaction, and those of mailbox mail that found no client.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "unmatched_addresses",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(500)),
        sa.Column("role", sa.String(4), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("message_id", sa.String(998)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("interaction_id", sa.Uuid, sa.ForeignKey("interactions.id")),
        sa.Column("candidates", ARRAY(sa.Uuid), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("mailbox", sa.String(500)),
        sa.Column("status", sa.String(10), nullable=False, server_default=sa.text("'open'")),
        sa.Column("person_id", sa.Uuid),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.text("now()"),
        ),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column("resolved_by", sa.String(200)),
        sa.CheckConstraint("role IN ('from', 'to', 'cc')", name="ck_unmatched_role"),
        sa.CheckConstraint("status IN ('open', 'linked', 'dismissed')", name="ck_unmatched_status"),
    )
    op.create_index(
        "ux_unmatched_interaction_address",
        "unmatched_addresses",
        ["interaction_id", "address"],
        unique=True,
        postgresql_where=sa.text("interaction_id IS NOT NULL"),
    )
    op.create_index(
        "ux_unmatched_uncaptured_message",
        "unmatched_addresses",
        ["mailbox", "message_id", "address"],
        unique=True,
        postgresql_where=sa.text("interaction_id IS NULL AND message_id IS NOT NULL"),
    )
    op.create_index(
        "ix_unmatched_open",
        "unmatched_addresses",
        ["seq"],
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_table("unmatched_addresses")
