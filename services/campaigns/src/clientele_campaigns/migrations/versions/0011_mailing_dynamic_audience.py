"""A mailing to a dynamic list keeps the organizations the directory resolved it to at send
time, for the caller.

Revision ID: 0011_mailing_dynamic_audience
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0011_mailing_dynamic_audience"
down_revision = "0010_paper_post"


def upgrade() -> None:
    op.add_column("mailings", sa.Column("audience_organizations", ARRAY(sa.Uuid)))
    op.add_column("mailings", sa.Column("audience_resolved_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    op.drop_column("mailings", "audience_resolved_at")
    op.drop_column("mailings", "audience_organizations")
