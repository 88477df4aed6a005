"""The recipients handed over and still waiting for a result, by when: the sweep that fails a
fax whose gateway never called back finds them without reading every recipient (ADR 47).

Revision ID: 0016_fax_callback_timeout
"""

import sqlalchemy as sa
from alembic import op

revision = "0016_fax_callback_timeout"
down_revision = "0015_greetings"


def upgrade() -> None:
    op.create_index(
        "ix_mailing_recipients_queued",
        "mailing_recipients",
        ["queued_at"],
        postgresql_where=sa.text("status = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_mailing_recipients_queued", "mailing_recipients")
