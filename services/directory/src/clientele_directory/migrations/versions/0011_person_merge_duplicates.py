"""Merging persons and finding their duplicates: a merged (soft-deleted) person points to its
survivor; names compared in one script (Cyrillic transliterated to Latin) through trigram
indexes; e-mails (case-folded) and personal phones looked up through GIN indexes.

Revision ID: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"

# Cyrillic in Latin letters (the common Russian romanization: й, ы → y; ю → yu; я → ya); other
# letters pass folded (lower case, ё as е), so a Latin name only loses its case.
LATIN = """
CREATE FUNCTION directory_latin(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT SET search_path FROM CURRENT
AS $$ SELECT translate(
    replace(replace(replace(replace(replace(replace(replace(replace(replace(replace(
        directory_fold(value),
        'щ', 'shch'), 'ж', 'zh'), 'х', 'kh'), 'ц', 'ts'), 'ч', 'ch'), 'ш', 'sh'),
        'ю', 'yu'), 'я', 'ya'), 'ъ', ''), 'ь', ''),
    'абвгдезийклмнопрстуфыэ', 'abvgdeziyklmnoprstufye') $$
"""

# "last first" in Latin letters, NULL when both are missing.
NAME_KEY = """
CREATE FUNCTION directory_person_name_key(last_name text, first_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path FROM CURRENT
AS $$ SELECT nullif(concat_ws(' ', directory_latin(last_name), directory_latin(first_name)), '') $$
"""

FOLD_EMAILS = """
CREATE FUNCTION directory_fold_emails(emails character varying[]) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$ SELECT ARRAY(SELECT lower(e) FROM unnest(emails) AS e) $$
"""


def upgrade() -> None:
    op.add_column(
        "persons",
        sa.Column(
            "merged_into", sa.Uuid, sa.ForeignKey("persons.id", name="fk_persons_merged_into")
        ),
    )
    op.create_index(
        "ix_persons_merged_into",
        "persons",
        ["merged_into"],
        postgresql_where=sa.text("merged_into IS NOT NULL"),
    )
    op.execute(LATIN)
    op.execute(NAME_KEY)
    op.execute(FOLD_EMAILS)
    op.execute(
        "CREATE INDEX ix_persons_name_key_trgm ON persons "
        "USING gin (directory_person_name_key(last_name, first_name) gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_persons_latin_name_key_trgm ON persons USING gin "
        "(directory_person_name_key(last_name_latin, first_name_latin) gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_persons_emails_folded ON persons USING gin (directory_fold_emails(emails))"
    )
    op.execute(
        "CREATE INDEX ix_employments_emails_folded ON employments "
        "USING gin (directory_fold_emails(emails))"
    )
    op.execute("CREATE INDEX ix_persons_phones ON persons USING gin (phones jsonb_path_ops)")


def downgrade() -> None:
    for index in (
        "ix_persons_phones",
        "ix_employments_emails_folded",
        "ix_persons_emails_folded",
        "ix_persons_latin_name_key_trgm",
        "ix_persons_name_key_trgm",
        "ix_persons_merged_into",
    ):
        op.execute(f"DROP INDEX {index}")
    op.execute("DROP FUNCTION directory_fold_emails")
    op.execute("DROP FUNCTION directory_person_name_key")
    op.execute("DROP FUNCTION directory_latin")
    op.drop_column("persons", "merged_into")
