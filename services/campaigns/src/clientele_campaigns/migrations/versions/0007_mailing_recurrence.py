"""Recurring newsletters: a mailing's schedule and the series its issues belong to.

Revision ID: 0007_mailing_recurrence
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_mailing_recurrence"
down_revision = "0008_bulk_fks"


def upgrade() -> None:
    op.add_column("mailings", sa.Column("recurrence", JSONB))
    op.add_column("mailings", sa.Column("series_id", sa.Uuid))
    op.add_column("mailings", sa.Column("issue", sa.Integer, nullable=False, server_default="1"))
    op.create_index("ix_mailings_series", "mailings", ["series_id", "issue"])


def downgrade() -> None:
    op.drop_index("ix_mailings_series", "mailings")
    op.drop_column("mailings", "issue")
    op.drop_column("mailings", "series_id")
    op.drop_column("mailings", "recurrence")
