"""Lists of organizations: static (members) and dynamic (a saved filter).

Revision ID: 0008
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table(
        "organization_lists",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("filter", JSONB),
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_by", sa.String(200)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("deleted_by", sa.String(200)),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_organization_lists_directions",
        "organization_lists",
        ["directions"],
        postgresql_using="gin",
    )
    op.create_table(
        "organization_list_members",
        sa.Column("list_id", sa.Uuid, sa.ForeignKey("organization_lists.id"), primary_key=True),
        sa.Column("organization_id", sa.Uuid, sa.ForeignKey("organizations.id"), primary_key=True),
        sa.Column("added_by", sa.String(200), nullable=False),
        sa.Column(
            "added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index(
        "ix_organization_list_members_organization",
        "organization_list_members",
        ["organization_id"],
    )


def downgrade() -> None:
    op.drop_table("organization_list_members")
    op.drop_table("organization_lists")
