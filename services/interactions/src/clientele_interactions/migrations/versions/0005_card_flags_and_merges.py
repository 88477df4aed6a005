"""Client cards and persons know what the directory did to them: blocked (the unwanted
counterparty register), soft-deleted, and merged into another record (``merged_into``, an alias
every read and write follows).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    for table in ("client_cards", "persons"):
        op.add_column(table, sa.Column("merged_into", sa.Uuid))
        op.create_index(
            f"ix_{table}_merged_into",
            table,
            ["merged_into"],
            postgresql_where=sa.text("merged_into IS NOT NULL"),
        )
    op.add_column(
        "client_cards",
        sa.Column("blocked", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.add_column(
        "client_cards",
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.create_index(
        "ix_interactions_person_ids", "interactions", ["person_ids"], postgresql_using="gin"
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_person_ids", table_name="interactions")
    op.drop_column("client_cards", "deleted")
    op.drop_column("client_cards", "blocked")
    for table in ("client_cards", "persons"):
        op.drop_index(f"ix_{table}_merged_into", table_name=table)
        op.drop_column(table, "merged_into")
