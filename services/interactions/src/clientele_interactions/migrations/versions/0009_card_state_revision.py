"""Client cards follow the directory's organization state topic (ADR 18): the snapshot order.

Revision ID: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.add_column(
        "client_cards",
        sa.Column("state_revision", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_column("client_cards", "state_revision")
