"""The search vocabulary: every word (letters only, three or more) of the organizations' and
persons' search documents, kept by statement triggers, with a trigram index. A search term is
compared with these words (a few hundred thousand short strings) to find its typo'd spellings,
instead of with every document (a million long strings, every one sharing a trigram rechecked).
The documents' statistics are finer (1000 buckets), so the planner sees how rare a fragment is:
a rare one is read through the trigram index, a common one along the name order.

Revision ID: 0012
"""

from alembic import op

revision = "0012"
down_revision = "0011"

WORDS = """
CREATE FUNCTION directory_words(document text) RETURNS SETOF text
LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURNS NULL ON NULL INPUT
AS $$
    SELECT DISTINCT word FROM regexp_split_to_table(document, '[^[:alpha:]]+') AS word
    WHERE length(word) >= 3
$$
"""

# Sorted, so two transactions adding the same new words lock them in one order (no deadlock).
COLLECT = """
CREATE FUNCTION directory_collect_words() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
BEGIN
    INSERT INTO directory_search_words (word)
    SELECT DISTINCT word FROM changed, directory_words(changed.search_text) AS word
    ORDER BY word
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$
"""

_TRIGGERS = [
    (table, event) for table in ("organizations", "persons") for event in ("insert", "update")
]


def upgrade() -> None:
    op.execute("CREATE TABLE directory_search_words (word text PRIMARY KEY)")
    op.execute(WORDS)
    op.execute(COLLECT)
    for table, event in _TRIGGERS:  # a trigger with a transition table has one event
        op.execute(
            f"CREATE TRIGGER {table}_search_words_{event} AFTER {event.upper()} ON {table}"
            " REFERENCING NEW TABLE AS changed FOR EACH STATEMENT"
            " EXECUTE FUNCTION directory_collect_words()"
        )
    op.execute(
        "INSERT INTO directory_search_words (word)"
        " SELECT DISTINCT word FROM ("
        "   SELECT search_text FROM organizations UNION ALL SELECT search_text FROM persons"
        " ) AS documents, directory_words(documents.search_text) AS word"
    )
    op.execute(
        "CREATE INDEX ix_directory_search_words_trgm ON directory_search_words"
        " USING gin (word gin_trgm_ops)"
    )
    for table in ("organizations", "persons"):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_text SET STATISTICS 1000")
        op.execute(f"ANALYZE {table} (search_text)")


def downgrade() -> None:
    for table in ("organizations", "persons"):
        op.execute(f"ALTER TABLE {table} ALTER COLUMN search_text SET STATISTICS -1")
    for table, event in _TRIGGERS:
        op.execute(f"DROP TRIGGER {table}_search_words_{event} ON {table}")
    op.execute("DROP TABLE directory_search_words")
    op.execute("DROP FUNCTION directory_collect_words()")
    op.execute("DROP FUNCTION directory_words(text)")
