"""Contact persons' birthdays in the persons read model (the birthday trigger).

Existing rows get theirs from the directory's person states: ``clientele republish directory
persons`` (a snapshot of the same version is applied again).

Revision ID: 0017_persons_birthday
"""

from alembic import op
from sqlalchemy import Column, Date

revision = "0017_persons_birthday"
down_revision = "0016_analytics_totals"


def upgrade() -> None:
    op.add_column("persons", Column("birthday", Date))


def downgrade() -> None:
    op.drop_column("persons", "birthday")
