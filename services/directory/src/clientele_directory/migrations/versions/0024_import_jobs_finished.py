"""Finished import jobs by when they finished: the sweep that removes old ones (ADR 58).

Revision ID: 0024
"""

from alembic import op

revision = "0024"
down_revision = "0023"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_import_jobs_finished ON import_jobs (finished_at)"
        " WHERE finished_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_import_jobs_finished")
