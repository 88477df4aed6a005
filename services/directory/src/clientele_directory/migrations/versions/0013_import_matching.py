"""Import matching through indexes: organizations' names compared without their legal form
(a stored ``name_key``, GIN trigram indexes instead of 0010's GiST nearest-neighbour scan, which
took tens of milliseconds a row), and e-mails and phones looked up through GIN indexes instead of
a scan of every organization per chunk.

Revision ID: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"

# Legal forms say nothing about which company it is: «ООО «Ромашка»» and «АО Ромашка» compare as
# «ромашка». Folded (lower case, ё as е), punctuation as spaces, forms dropped, spaces squeezed.
LEGAL_FORMS = (
    "общество с ограниченной ответственностью",
    "(публичное |непубличное |закрытое |открытое )?акционерное общество",
    "индивидуальный предприниматель",
    "(автономная )?некоммерческая организация",
    "(федеральное )?государственное унитарное предприятие",
    "муниципальное унитарное предприятие",
    "ооо|оао|зао|пао|нао|ао|ип|нко|ано|гуп|муп|фгуп|гбу|фгбу|мбу|мку|гку|тоо|чуп|одо",
    "llc|ltd|inc|jsc|gmbh|ag|sa|plc|corp|bv|oy|ab",
)
NAME_KEY = f"""
CREATE FUNCTION directory_name_key(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT SET search_path FROM CURRENT
AS $$ SELECT btrim(regexp_replace(regexp_replace(
    ' ' || regexp_replace(directory_fold(value), '[^[:alnum:]]+', ' ', 'g') || ' ',
    ' ({"|".join(LEGAL_FORMS)})(?= )', ' ', 'g'), ' +', ' ', 'g')) $$
"""


def upgrade() -> None:
    op.execute(NAME_KEY)
    op.add_column(
        "organizations",
        sa.Column(
            "name_key", sa.Text, sa.Computed("directory_name_key(legal_name)", persisted=True)
        ),
    )
    op.execute("DROP INDEX ix_organizations_legal_name_trgm")
    # A row with an INN is compared only with organizations without one (two INNs are two
    # companies): that index is small. A row without an INN is compared with every one.
    op.execute(
        "CREATE INDEX ix_organizations_name_key_trgm ON organizations"
        " USING gin (name_key gin_trgm_ops) WHERE deleted_at IS NULL"
    )
    op.execute(
        "CREATE INDEX ix_organizations_name_key_no_inn_trgm ON organizations"
        " USING gin (name_key gin_trgm_ops) WHERE deleted_at IS NULL AND inn IS NULL"
    )
    op.execute("CREATE INDEX ix_organizations_emails ON organizations USING gin (emails)")
    op.execute(
        "CREATE INDEX ix_organizations_phones ON organizations USING gin (phones jsonb_path_ops)"
    )


def downgrade() -> None:
    for index in (
        "ix_organizations_phones",
        "ix_organizations_emails",
        "ix_organizations_name_key_no_inn_trgm",
        "ix_organizations_name_key_trgm",
    ):
        op.execute(f"DROP INDEX {index}")
    op.execute(
        "CREATE INDEX ix_organizations_legal_name_trgm ON organizations "
        "USING gist (directory_fold(legal_name) gist_trgm_ops)"
    )
    op.drop_column("organizations", "name_key")
    op.execute("DROP FUNCTION directory_name_key")
