"""Import jobs say where the header was read: the sheet, its row (and rows), the encoding.

Revision ID: 0022
"""

from alembic import op

revision = "0022"
down_revision = "0021"


def upgrade() -> None:
    op.execute("ALTER TABLE import_jobs ADD COLUMN source jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE import_jobs DROP COLUMN source")
