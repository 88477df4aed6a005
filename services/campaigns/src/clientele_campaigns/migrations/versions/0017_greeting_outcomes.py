"""A greeting's yearly key says whether the person was greeted or excluded (with the reason):
an exclusion no longer counts as that year's greeting (ADR 51, 6 December 2026). Keys already
kept take their outcome from their day's mailing.

Revision ID: 0017_greeting_outcomes
"""

import sqlalchemy as sa
from alembic import op

revision = "0017_greeting_outcomes"
down_revision = "0016_fax_callback_timeout"


def upgrade() -> None:
    op.add_column(
        "greeting_sends",
        sa.Column("outcome", sa.String(20), nullable=False, server_default="greeted"),
    )
    op.add_column("greeting_sends", sa.Column("reason", sa.String(40)))
    op.execute(
        "UPDATE greeting_sends g SET outcome = 'excluded', reason = r.reason "
        "FROM mailing_recipients r "
        "WHERE r.mailing_id = g.mailing_id AND r.person_id = g.person_id "
        "AND r.status = 'excluded'"
    )


def downgrade() -> None:
    op.drop_column("greeting_sends", "reason")
    op.drop_column("greeting_sends", "outcome")
