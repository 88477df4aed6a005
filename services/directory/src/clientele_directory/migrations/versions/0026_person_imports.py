"""Imports of persons (ADR 63): an import job's ``kind`` (``organization`` or ``person``), and
an index of organizations' name keys for linking a person to the company a row names.

Revision ID: 0026
"""

from alembic import op

revision = "0026"
down_revision = "0025"


def upgrade() -> None:
    op.execute(
        "ALTER TABLE import_jobs ADD COLUMN kind varchar(16) NOT NULL DEFAULT 'organization'"
    )
    op.execute(
        "CREATE INDEX ix_organizations_name_key ON organizations (name_key)"
        " WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_organizations_name_key")
    op.execute("ALTER TABLE import_jobs DROP COLUMN kind")
