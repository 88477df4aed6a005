"""Stage playbooks: a checklist ticked on each deal and a call script.

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.add_column(
        "stages", sa.Column("checklist", JSONB, nullable=False, server_default=sa.text("'[]'"))
    )
    op.add_column("stages", sa.Column("script", JSONB))
    op.add_column(
        "deals",
        sa.Column("checklist_ticks", JSONB, nullable=False, server_default=sa.text("'{}'")),
    )


def downgrade() -> None:
    op.drop_column("deals", "checklist_ticks")
    op.drop_column("stages", "script")
    op.drop_column("stages", "checklist")
