"""Organizations' names per direction (ADR 57): the similar-name look-up of an import and of the
duplicates reads the names of the caller's directions only.

``organization_names`` holds one row per live organization and direction (its name without the
legal form and whether it has an INN), hash-partitioned by direction into NAME_PARTITIONS tables,
each with its own trigram indexes. A look-up for a direction is pruned to that direction's
partition while it runs, so its trigram posting lists hold the names of that direction and of
the few others hashed with it, never the whole base (with 0020's two-column indexes every
trigram's list spanned all directions). Statement triggers with transition tables keep it in the
transaction of every write of ``organizations`` (creations, COPY of an import, edits, merges,
deletions and restorations, direction changes). It replaces 0020's two trigram indexes of
``organizations``: a caller who sees every direction reads every partition.

Revision ID: 0025
"""

from alembic import op

revision = "0025"
down_revision = "0024"

NAME_PARTITIONS = 64
BATCH = 50_000

CHANGED = """(n.directions, n.name_key, n.inn IS NULL, n.deleted_at IS NULL)
              IS DISTINCT FROM (o.directions, o.name_key, o.inn IS NULL, o.deleted_at IS NULL)"""

KEEP = f"""
CREATE FUNCTION directory_keep_names() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT
AS $$
DECLARE
    code varchar;
    ids uuid[];
BEGIN
    IF TG_OP = 'DELETE' THEN
        FOR code, ids IN
            SELECT d, array_agg(o.id ORDER BY o.id) FROM old_rows o, unnest(o.directions) AS d
            GROUP BY d ORDER BY d
        LOOP
            DELETE FROM organization_names WHERE direction = code AND organization_id = ANY(ids);
        END LOOP;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        FOR code, ids IN
            SELECT d, array_agg(o.id ORDER BY o.id)
            FROM old_rows o JOIN new_rows n ON n.id = o.id, unnest(o.directions) AS d
            WHERE {CHANGED}
            GROUP BY d ORDER BY d
        LOOP
            DELETE FROM organization_names WHERE direction = code AND organization_id = ANY(ids);
        END LOOP;
        INSERT INTO organization_names (direction, organization_id, name_key, has_inn)
        SELECT DISTINCT d, n.id, n.name_key, n.inn IS NOT NULL
        FROM new_rows n JOIN old_rows o ON o.id = n.id, unnest(n.directions) AS d
        WHERE n.deleted_at IS NULL AND {CHANGED}
        ORDER BY 1, 2;
        RETURN NULL;
    END IF;
    INSERT INTO organization_names (direction, organization_id, name_key, has_inn)
    SELECT DISTINCT d, n.id, n.name_key, n.inn IS NOT NULL
    FROM new_rows n, unnest(n.directions) AS d
    WHERE n.deleted_at IS NULL
    ORDER BY 1, 2;
    RETURN NULL;
END $$
"""  # noqa: S608 - constants only
"""One function for the three triggers (a trigger with transition tables has one event). An
update touches only the organizations whose directions, name, INN presence or liveness changed
(an import's list merges and most edits write none of them). Names are deleted one direction at
a time (``direction = code`` prunes the statement to one partition and probes its primary key;
a join of the transition table with the whole table would scan every partition). Rows are
written sorted, so two transactions lock names in one order."""

_TRIGGERS = {
    "insert": "REFERENCING NEW TABLE AS new_rows",
    "update": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "REFERENCING OLD TABLE AS old_rows",
}


def upgrade() -> None:
    op.execute(
        "CREATE TABLE organization_names ("
        " direction varchar(64) NOT NULL,"
        " organization_id uuid NOT NULL,"
        " name_key text NOT NULL,"
        " has_inn boolean NOT NULL,"
        " PRIMARY KEY (direction, organization_id)"
        ") PARTITION BY HASH (direction)"
    )
    for remainder in range(NAME_PARTITIONS):
        op.execute(
            f"CREATE TABLE organization_names_{remainder:02d} PARTITION OF organization_names"
            f" FOR VALUES WITH (MODULUS {NAME_PARTITIONS}, REMAINDER {remainder})"
        )
    op.execute(KEEP)
    # the existing organizations, in batches of ids (the indexes are built once, afterwards)
    op.execute(
        f"""
        DO $$
        DECLARE last uuid := '00000000-0000-0000-0000-000000000000'; upto uuid;
        BEGIN
            LOOP
                SELECT id INTO upto FROM organizations WHERE id > last
                ORDER BY id OFFSET {BATCH - 1} LIMIT 1;
                INSERT INTO organization_names (direction, organization_id, name_key, has_inn)
                SELECT DISTINCT d, o.id, o.name_key, o.inn IS NOT NULL
                FROM organizations o, unnest(o.directions) AS d
                WHERE o.id > last AND (upto IS NULL OR o.id <= upto) AND o.deleted_at IS NULL;
                EXIT WHEN upto IS NULL;
                last := upto;
            END LOOP;
        END $$
        """  # noqa: S608 - constants only
    )
    op.execute(
        "CREATE INDEX ix_organization_names_trgm ON organization_names"
        " USING gin (name_key gin_trgm_ops)"
    )
    op.execute(
        "CREATE INDEX ix_organization_names_no_inn_trgm ON organization_names"
        " USING gin (name_key gin_trgm_ops) WHERE NOT has_inn"
    )
    for event, transition in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER organizations_names_{event} AFTER {event.upper()} ON organizations"
            f" {transition} FOR EACH STATEMENT EXECUTE FUNCTION directory_keep_names()"
        )
    op.execute("DROP INDEX ix_organizations_directions_name_key_trgm")
    op.execute("DROP INDEX ix_organizations_directions_name_key_no_inn_trgm")
    op.execute("ANALYZE organization_names")


def downgrade() -> None:
    op.execute(
        "CREATE INDEX ix_organizations_directions_name_key_no_inn_trgm ON organizations"
        " USING gin (directions, (CASE WHEN inn IS NULL THEN name_key END) gin_trgm_ops)"
        " WHERE deleted_at IS NULL"
    )
    op.execute(
        "CREATE INDEX ix_organizations_directions_name_key_trgm ON organizations"
        " USING gin (directions, name_key gin_trgm_ops) WHERE deleted_at IS NULL"
    )
    for event in _TRIGGERS:
        op.execute(f"DROP TRIGGER organizations_names_{event} ON organizations")
    op.execute("DROP TABLE organization_names")
    op.execute("DROP FUNCTION directory_keep_names()")
