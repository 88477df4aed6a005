"""Import jobs remember whether a row's lists replace an organization's or are added to them.

Revision ID: 0021
"""

from alembic import op

revision = "0021"
down_revision = "0020"


def upgrade() -> None:
    op.execute("ALTER TABLE import_jobs ADD COLUMN replace_lists boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE import_jobs DROP COLUMN replace_lists")
