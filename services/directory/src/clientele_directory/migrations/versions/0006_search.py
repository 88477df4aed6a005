"""Search: pg_trgm, folded search documents of organizations and persons, trigram indexes, and a
Cyrillic-aware name order when the server has ICU collations.

Revision ID: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"

# Folding shared by documents and queries: lower case, ё read as е (Russian writers use either).
FOLD = """
CREATE FUNCTION directory_fold(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$ SELECT translate(lower(value), 'ё', 'е') $$
"""

# Phones are searched by their digits (E.164 without '+'), e-mails as written.
ORGANIZATION_DOCUMENT = """
CREATE FUNCTION directory_organization_document(
    legal_name text, short_name text, inn text, kpp text, ogrn text, emails text[], phones jsonb
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT
AS $$
    SELECT directory_fold(concat_ws(' ',
        legal_name, short_name, inn, kpp, ogrn,
        (SELECT string_agg(e, ' ') FROM unnest(emails) AS e),
        (SELECT string_agg(ltrim(p->>'number', '+'), ' ') FROM jsonb_array_elements(phones) AS p)
    ))
$$
"""

PERSON_DOCUMENT = """
CREATE FUNCTION directory_person_document(
    last_name text, first_name text, middle_name text, last_name_latin text,
    first_name_latin text, emails text[], phones jsonb
) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT
AS $$
    SELECT directory_fold(concat_ws(' ',
        last_name, first_name, middle_name, last_name_latin, first_name_latin,
        (SELECT string_agg(e, ' ') FROM unnest(emails) AS e),
        (SELECT string_agg(ltrim(p->>'number', '+'), ' ') FROM jsonb_array_elements(phones) AS p)
    ))
$$
"""

# The name order: ICU's root collation sorts Ё with Е and Latin before Cyrillic; without ICU the
# database default is used (and this index is not made).
ICU_NAME_INDEX = """
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu') THEN
        CREATE INDEX ix_organizations_legal_name_icu
            ON organizations ((legal_name COLLATE "und-x-icu"), id);
    END IF;
END $$
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(FOLD)
    op.execute(ORGANIZATION_DOCUMENT)
    op.execute(PERSON_DOCUMENT)
    op.add_column(
        "organizations",
        sa.Column(
            "search_text",
            sa.Text,
            sa.Computed(
                "directory_organization_document(legal_name, short_name, inn, kpp, ogrn, "
                "emails::text[], phones)",
                persisted=True,
            ),
        ),
    )
    op.add_column(
        "persons",
        sa.Column(
            "search_text",
            sa.Text,
            sa.Computed(
                "directory_person_document(last_name, first_name, middle_name, "
                "last_name_latin, first_name_latin, emails::text[], phones)",
                persisted=True,
            ),
        ),
    )
    op.create_index(
        "ix_organizations_search",
        "organizations",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index(
        "ix_persons_search",
        "persons",
        ["search_text"],
        postgresql_using="gin",
        postgresql_ops={"search_text": "gin_trgm_ops"},
    )
    op.create_index("ix_organizations_created", "organizations", ["created_at", "id"])
    op.create_index("ix_organizations_status", "organizations", ["status"])
    op.execute(ICU_NAME_INDEX)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_organizations_legal_name_icu")
    op.drop_index("ix_organizations_status", "organizations")
    op.drop_index("ix_organizations_created", "organizations")
    op.drop_index("ix_persons_search", "persons")
    op.drop_index("ix_organizations_search", "organizations")
    op.drop_column("persons", "search_text")
    op.drop_column("organizations", "search_text")
    op.execute("DROP FUNCTION directory_person_document")
    op.execute("DROP FUNCTION directory_organization_document")
    op.execute("DROP FUNCTION directory_fold")
