"""The process running an import job's rows: a child of the owner's process (ADR 62).

Revision ID: 0027
"""

from alembic import op

revision = "0027"
down_revision = "0026"


def upgrade() -> None:
    op.execute("ALTER TABLE import_jobs ADD COLUMN worker_pid integer")


def downgrade() -> None:
    op.execute("ALTER TABLE import_jobs DROP COLUMN worker_pid")
