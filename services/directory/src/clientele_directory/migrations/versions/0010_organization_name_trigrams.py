"""A GiST trigram index on the folded legal name: an import's similar-name candidates are a
nearest-neighbour scan (``<->`` with LIMIT) instead of ranking every trigram match.

Revision ID: 0010
"""

from alembic import op

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_organizations_legal_name_trgm ON organizations "
        "USING gist (directory_fold(legal_name) gist_trgm_ops)"
    )


def downgrade() -> None:
    op.drop_index("ix_organizations_legal_name_trgm", table_name="organizations")
