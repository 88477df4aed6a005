"""Custom attributes: definitions made at run time, values in a JSON object on each record.

Revision ID: 0007
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.create_table(
        "attribute_definitions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("entity_kind", sa.String(20), nullable=False),
        sa.Column("key", sa.String(63), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("type", sa.String(20), nullable=False),
        sa.Column("required", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("options", JSONB, nullable=False, server_default="[]"),
        sa.Column("reference_kind", sa.String(20)),
        sa.Column("archived", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("updated_by", sa.String(200)),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("entity_kind", "key", name="ux_attribute_definitions_key"),
    )
    for table in ("organizations", "persons"):
        op.add_column(
            table, sa.Column("attributes", JSONB, nullable=False, server_default=sa.text("'{}'"))
        )
        op.create_index(
            f"ix_{table}_attributes",
            table,
            ["attributes"],
            postgresql_using="gin",
            postgresql_ops={"attributes": "jsonb_path_ops"},
        )


def downgrade() -> None:
    for table in ("organizations", "persons"):
        op.drop_index(f"ix_{table}_attributes", table)
        op.drop_column(table, "attributes")
    op.drop_table("attribute_definitions")
