"""The directory lists read model follows the lists and list members state topics (ADR 18):
the whole list (kind, filter, directions, deleted) and each record's order; no foreign key from
members to lists (a member may arrive before its list, and a rebuild swaps tables).

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0006"
down_revision = "0006_mailings"


def _order() -> list[sa.Column[int]]:
    """The order columns of a state record (a row from before: 0, older than any record)."""
    return [
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("state_revision", sa.BigInteger, nullable=False, server_default="0"),
    ]


def upgrade() -> None:
    op.drop_constraint(
        "directory_list_members_list_id_fkey", "directory_list_members", type_="foreignkey"
    )
    op.add_column(
        "directory_lists",
        sa.Column("kind", sa.String(20), nullable=False, server_default="static"),
    )
    op.add_column("directory_lists", sa.Column("filter", JSONB))
    op.add_column(
        "directory_lists",
        sa.Column("directions", ARRAY(sa.String(64)), nullable=False, server_default="{}"),
    )
    op.add_column(
        "directory_lists",
        sa.Column("deleted", sa.Boolean, nullable=False, server_default="false"),
    )
    for table in ("directory_lists", "directory_list_members"):
        for column in _order():
            op.add_column(table, column)


def downgrade() -> None:
    for table in ("directory_lists", "directory_list_members"):
        for column in ("state_revision", "version"):
            op.drop_column(table, column)
    for column in ("deleted", "directions", "filter", "kind"):
        op.drop_column("directory_lists", column)
    op.create_foreign_key(
        "directory_list_members_list_id_fkey",
        "directory_list_members",
        "directory_lists",
        ["list_id"],
        ["list_id"],
    )
