"""Drop two indexes of organizations that no query reads: ``ix_organizations_emails`` (the
e-mails as written, superseded by the folded ones of migration 0020 for every look-up) and
``ix_organizations_ogrn`` (nothing looks an organization up by its OGRN; search reads the
trigrams of the document that holds it). Every write of an organization maintained them
(ADR 74).

Revision ID: 0028
"""

from alembic import op

revision = "0028"
down_revision = "0027"


def upgrade() -> None:
    op.execute("DROP INDEX ix_organizations_emails")
    op.execute("DROP INDEX ix_organizations_ogrn")


def downgrade() -> None:
    op.execute("CREATE INDEX ix_organizations_ogrn ON organizations (ogrn)")
    op.execute("CREATE INDEX ix_organizations_emails ON organizations USING gin (emails)")
