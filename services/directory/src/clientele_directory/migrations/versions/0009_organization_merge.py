"""Merging organizations: a merged (soft-deleted) organization points to its survivor.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column(
        "organizations",
        sa.Column(
            "merged_into",
            sa.Uuid,
            sa.ForeignKey("organizations.id", name="fk_organizations_merged_into"),
        ),
    )
    op.create_index(
        "ix_organizations_merged_into",
        "organizations",
        ["merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_organizations_merged_into", table_name="organizations")
    op.drop_column("organizations", "merged_into")
