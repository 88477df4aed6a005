"""A list resolution says whether the list was static or dynamic (resolved by the directory).

Revision ID: 0009_resolution_kind
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_resolution_kind"
down_revision = "0007_mailing_recurrence"


def upgrade() -> None:
    op.add_column(
        "list_resolutions",
        sa.Column("list_kind", sa.String(20), nullable=False, server_default="static"),
    )


def downgrade() -> None:
    op.drop_column("list_resolutions", "list_kind")
