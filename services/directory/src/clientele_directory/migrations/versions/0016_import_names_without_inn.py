"""The names of organizations without an INN indexed as an expression the planner cannot serve
otherwise: with 0013's partial index (``WHERE inn IS NULL``) the planner could read the INN
index for ``inn IS NULL`` and AND it with the index of every name, probing all names per row.

Revision ID: 0016
"""

from alembic import op

revision = "0016"
down_revision = "0015"


def upgrade() -> None:
    op.execute("DROP INDEX ix_organizations_name_key_no_inn_trgm")
    op.execute(
        "CREATE INDEX ix_organizations_name_key_no_inn_trgm ON organizations USING gin"
        " ((CASE WHEN inn IS NULL THEN name_key END) gin_trgm_ops) WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_organizations_name_key_no_inn_trgm")
    op.execute(
        "CREATE INDEX ix_organizations_name_key_no_inn_trgm ON organizations"
        " USING gin (name_key gin_trgm_ops) WHERE deleted_at IS NULL AND inn IS NULL"
    )
