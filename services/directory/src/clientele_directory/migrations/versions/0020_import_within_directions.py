"""Import at scale (issue 17): similar names are looked up within the importer's directions, and
organizations' e-mails are compared case-folded.

0013's and 0016's trigram indexes of names become two-column GIN indexes (``directions``,
name): a scan for ``directions && :dirs AND name % :key`` intersects the directions' posting
lists with the names' inside the index, so organizations in directions the importer does not see
are never read (with the name-only index every similar name of the whole base was fetched and
then filtered out). A GIN index serves a condition on either column alone as well, so the
callers who see every direction still use it for the name. ``directory_fold_emails(emails)``
(migration 0011) is indexed for organizations as it is for persons.

Revision ID: 0020
"""

from alembic import op

revision = "0020"
down_revision = "0019"


def upgrade() -> None:
    op.execute("DROP INDEX ix_organizations_name_key_trgm")
    op.execute(
        "CREATE INDEX ix_organizations_directions_name_key_trgm ON organizations"
        " USING gin (directions, name_key gin_trgm_ops) WHERE deleted_at IS NULL"
    )
    op.execute("DROP INDEX ix_organizations_name_key_no_inn_trgm")
    op.execute(
        "CREATE INDEX ix_organizations_directions_name_key_no_inn_trgm ON organizations"
        " USING gin (directions, (CASE WHEN inn IS NULL THEN name_key END) gin_trgm_ops)"
        " WHERE deleted_at IS NULL"
    )
    op.execute(
        "CREATE INDEX ix_organizations_emails_folded ON organizations"
        " USING gin (directory_fold_emails(emails))"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_organizations_emails_folded")
    op.execute("DROP INDEX ix_organizations_directions_name_key_no_inn_trgm")
    op.execute(
        "CREATE INDEX ix_organizations_name_key_no_inn_trgm ON organizations USING gin"
        " ((CASE WHEN inn IS NULL THEN name_key END) gin_trgm_ops) WHERE deleted_at IS NULL"
    )
    op.execute("DROP INDEX ix_organizations_directions_name_key_trgm")
    op.execute(
        "CREATE INDEX ix_organizations_name_key_trgm ON organizations"
        " USING gin (name_key gin_trgm_ops) WHERE deleted_at IS NULL"
    )
