"""A covering name-order index for text searches: the name and id of live organizations with
their status, directions and search document, so a search by name walks the index checking the
fragment and the filter in it, and reads only the rows that pass (index-only scans).

A B-tree entry holds about 2.7 kB at most: only organizations whose name, document and
directions are small enough (nearly all) are in it; the others have a small index of their own
and are searched apart. Statistics on that size tell the planner how few the others are.

Revision ID: 0014
"""

from alembic import op

revision = "0014"
down_revision = "0013"

# The size as api/search.py writes it (_index_size, COVERED_BYTES = 2000): the planner proves a
# query may use a partial index by comparing the expressions as written. 72 bytes bound one
# direction in an array (a code of 64 ASCII characters, its length word and alignment).
SIZE = "octet_length(legal_name) + octet_length(search_text) + 72 * cardinality(directions)"

# The name order of 0006: ICU's root collation when the server has it.
INDEXES = """
DO $$
DECLARE
    name text := CASE
        WHEN EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')
        THEN '(legal_name COLLATE "und-x-icu")' ELSE 'legal_name' END;
BEGIN
    EXECUTE format(
        'CREATE INDEX ix_organizations_search_order ON organizations (%s, id)'
        ' INCLUDE (status, directions, search_text) WHERE deleted_at IS NULL AND'
        ' octet_length(legal_name) + octet_length(search_text) + 72 * cardinality(directions)'
        ' <= 2000', name);
    EXECUTE format(
        'CREATE INDEX ix_organizations_search_order_large ON organizations (%s, id)'
        ' WHERE deleted_at IS NULL AND'
        ' octet_length(legal_name) + octet_length(search_text) + 72 * cardinality(directions)'
        ' > 2000', name);
END $$
"""


def upgrade() -> None:
    op.execute(INDEXES)
    op.execute(f"CREATE STATISTICS organizations_search_size ON ({SIZE}) FROM organizations")
    op.execute("ANALYZE organizations")


def downgrade() -> None:
    op.execute("DROP STATISTICS organizations_search_size")
    op.execute("DROP INDEX ix_organizations_search_order_large")
    op.execute("DROP INDEX ix_organizations_search_order")
