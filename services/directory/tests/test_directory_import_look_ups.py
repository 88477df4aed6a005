"""The imports' look-ups of the records a chunk's e-mails and phones match (ADR 75) and of the
names similar to its new organizations' (ADR 77), against real PostgreSQL, under the statistics
a table being filled by an import has: counted empty (vacuumed after a discarded import, its
pages kept) while it holds thousands of rows, with the plan a prepared statement caches for any
values (generic) and one made for the values given (custom). Each value reads only the records
holding it, never a test of every value against every record.

The look-ups run over a temporary copy of the table (same columns and indexes), which shadows
it for the connection, so the statistics are the test's own. The statement is prepared in SQL
(``PREPARE``) so that ``plan_cache_mode`` decides which plan ``EXECUTE`` runs."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from clientele_directory.imports.queries import (
    IMPORT_SETTINGS,
    MATCHING_IDS,
    MERGE_PENDING,
    NAME_SIMILARITY,
    analyze_undercounted,
    similar_names,
)
from clientele_directory.person_imports.queries import MATCHING_PERSON_IDS
from clientele_shared.db import async_url
from clientele_testkit.infra import Infrastructure
from sqlalchemy import TextClause
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

pytestmark = pytest.mark.integration

ROWS = 3000
"""Records in the table when the look-up runs; its statistics say none."""
VALUES = 300
"""E-mails and phones of the look-up (as many of each), every one held by one record."""


@dataclass(frozen=True)
class LookUp:
    table: str
    statement: TextClause
    types: dict[str, str]
    """Each parameter's SQL type."""
    fill: str
    """INSERT of records ``$1`` to ``$2``, record ``k`` holding the e-mail ``rk@x.ru`` and the
    phone ``+7999`` and k on 7 digits."""


NUMBERS = " FROM generate_series(CAST($1 AS int), CAST($2 AS int)) k"
PERSONS = LookUp(
    "persons",
    MATCHING_PERSON_IDS,
    {"emails": "text[]", "phones": "text[]"},
    "INSERT INTO persons (id, first_name, last_name, phones, emails, created_by)"
    " SELECT gen_random_uuid(), 'Иван', 'Петров', jsonb_build_array(jsonb_build_object("
    "'number', '+7999' || lpad(k::text, 7, '0'))), ARRAY['r' || k || '@x.ru'], 'test'" + NUMBERS,
)
ORGANIZATIONS = LookUp(
    "organizations",
    MATCHING_IDS,
    {"ids": "uuid[]", "inns": "varchar[]", "emails": "varchar[]", "phones": "text[]"},
    "INSERT INTO organizations (id, legal_name, status, directions, phones, emails, created_by)"
    " SELECT gen_random_uuid(), 'ООО «Ромашка-' || k || '»', 'active', ARRAY['sales'],"
    " jsonb_build_array(jsonb_build_object('number', '+7999' || lpad(k::text, 7, '0'))),"
    " ARRAY['r' || k || '@x.ru'], 'test'" + NUMBERS,
)


@pytest.fixture
async def connection(infra: Infrastructure, migrated: None) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    try:
        yield conn
    finally:
        await conn.close()


def _prepare(look_up: LookUp) -> tuple[str, list[str]]:
    """``PREPARE look_up`` of the statement (its parameters numbered in order of appearance),
    and the parameters' names in that order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match[1] not in names:
            names.append(match[1])
        return f"${names.index(match[1]) + 1}"

    sql = re.sub(r"(?<![:\w]):(\w+)", number, look_up.statement.text)
    types = ", ".join(look_up.types[name] for name in names)
    return f"PREPARE look_up({types}) AS {sql}", names


def _literals(look_up: LookUp, names: list[str], values: dict[str, Any]) -> str:
    """The arguments of ``EXECUTE look_up`` as SQL literals, in the order of ``names``."""
    return ", ".join(
        f"'{{{','.join(map(str, v))}}}'::{look_up.types[name]}"
        if isinstance(v := values[name], list)
        else f"'{v}'::{look_up.types[name]}"
        for name in names
    )


def _examined(node: dict[str, Any], table: str) -> int:
    """The rows of ``table`` (or of its partitions, ``table_*``) a plan's nodes read (kept or
    filtered out, over all their loops), and the pairs its joins tested and refused."""
    rows = int(node.get("Rows Removed by Join Filter", 0))
    relation = node.get("Relation Name", "")
    if relation == table or relation.startswith(f"{table}_"):
        read = sum(
            node.get(k, 0)
            for k in ("Actual Rows", "Rows Removed by Filter", "Rows Removed by Index Recheck")
        )
        rows += int(read * node.get("Actual Loops", 1))
    return rows + sum(_examined(child, table) for child in node.get("Plans", []))


@pytest.mark.parametrize("look_up", [PERSONS, ORGANIZATIONS], ids=lambda u: u.table)
@pytest.mark.parametrize("plans", ["force_generic_plan", "force_custom_plan"])
async def test_each_e_mail_and_phone_reads_only_the_records_holding_it_in_a_table_counted_empty(
    connection: asyncpg.Connection, look_up: LookUp, plans: str
) -> None:
    table = look_up.table
    await connection.execute(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL)")
    try:
        # a discarded import: its rows written, then vacuumed away with the table's pages kept
        await connection.execute(look_up.fill, 1_000_001, 1_000_000 + ROWS)
        await connection.execute(f"DELETE FROM {table}")
        await connection.execute(f"VACUUM (TRUNCATE false) {table}")
        counted = await connection.fetchval(
            "SELECT reltuples FROM pg_class WHERE oid = CAST($1::text AS regclass)",
            f"pg_temp.{table}",
        )
        assert counted == 0
        # the next import's rows, the statistics unchanged, the GIN lists merged as an import's
        await connection.execute(look_up.fill, 1, ROWS)
        await connection.execute(
            "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i"
            " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
            " WHERE a.amname = 'gin' AND i.indrelid = CAST($1::text AS regclass)",
            f"pg_temp.{table}",
        )

        prepare, names = _prepare(look_up)
        await connection.execute(prepare)
        await connection.execute(f"SET plan_cache_mode = {plans}")
        values = {
            "ids": [],
            "inns": [],
            "emails": [f"r{k}@x.ru" for k in range(1, ROWS, ROWS // VALUES)],
            "phones": [f"+7999{k:07d}" for k in range(2, ROWS, ROWS // VALUES)],
        }
        found = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE look_up({_literals(look_up, names, values)})"
        )
        plan = json.loads(found)[0]["Plan"]

        assert plan["Actual Rows"] == 2 * VALUES  # each value found its one record
        # each value read the one record holding it; beside them, the organizations' legs of ids
        # and INNs (empty here) may read the table once, never once per value
        assert _examined(plan, table) <= 2 * VALUES + ROWS
    finally:  # the prepared statement ends with the connection
        await connection.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")


NAMES = 5000
"""Organizations of the direction when the similar names are looked up; statistics say none."""
NEW = 200
"""The chunk's new organizations whose similar names are looked up (the last by name)."""
NAMES_TYPES = {
    "nums": "int[]",
    "positions": "int[]",
    "created": "uuid[]",
    "threshold": "float8",
    "limit": "int",
    "dirs": "varchar[]",
}
FILL_ORGANIZATIONS = (
    "INSERT INTO organizations (id, legal_name, status, directions, created_by)"
    " SELECT gen_random_uuid(), 'ООО «' || translate(substr(md5(CAST(k / 2 AS text)), 1, 16),"
    " '0123456789abcdef', 'абвгдежзиклмнопр') || ' ' || k % 2 || '»', 'active', ARRAY['sales'],"
    " 'test' FROM generate_series(CAST($1 AS int), CAST($2 AS int)) k"
)
"""Organizations ``$1`` to ``$2`` of the direction ``sales``, named by pairs: two names share 16
letters drawn from the digest of ``k / 2``, so each is similar to one other name."""
FILL_NAMES = (
    "INSERT INTO organization_names (direction, organization_id, name_key, has_inn)"
    " SELECT 'sales', id, name_key, false FROM organizations ON CONFLICT DO NOTHING"
)


@pytest.mark.parametrize("state", ["analyzed empty", "vacuumed empty", "vacuumed, 3 kept"])
@pytest.mark.parametrize("sees_all", [False, True], ids=["per direction", "every direction"])
@pytest.mark.parametrize("plans", ["force_generic_plan", "force_custom_plan"])
async def test_similar_names_of_a_first_import_read_the_names_near_each_new_name_only(
    infra: Infrastructure, migrated: None, state: str, sees_all: bool, plans: str
) -> None:
    """A new installation's tables were analyzed empty by its migrations (no statistics of their
    columns); a dry run's rows, vacuumed after it (ADR 73), leave tables counted empty, or
    holding the few rows kept, with all their pages. In each, the chunk's look-up of similar
    names (after the import's ANALYZE of what counts far fewer rows than it wrote) reads the
    names sharing trigrams with each new name and their organizations by key, never every name
    or organization for each new name (ADR 77)."""
    url = async_url(infra.test_database_url("directory"))
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            assert isinstance(raw, asyncpg.Connection)
            # temporary copies shadow the tables: 4 partitions of names instead of 64
            await raw.execute(
                "CREATE TEMP TABLE organizations (LIKE public.organizations INCLUDING ALL);"
                " CREATE TEMP TABLE organization_names (LIKE public.organization_names"
                " INCLUDING ALL) PARTITION BY HASH (direction)"
            )
            for remainder in range(4):
                await raw.execute(
                    f"CREATE TEMP TABLE organization_names_{remainder} PARTITION OF"
                    f" organization_names FOR VALUES WITH (MODULUS 4, REMAINDER {remainder})"
                )
            kept = 0
            if state == "analyzed empty":
                await raw.execute("ANALYZE organizations, organization_names")
            else:  # a discarded import of the same file: its rows vacuumed away, pages kept
                kept = 3 if state == "vacuumed, 3 kept" else 0
                await raw.execute(FILL_ORGANIZATIONS, 1, NAMES)
                await raw.execute(FILL_NAMES)
                await raw.execute(
                    "DELETE FROM organizations WHERE id NOT IN (SELECT id FROM organizations"
                    f" ORDER BY id LIMIT {kept}); DELETE FROM organization_names m WHERE NOT"
                    " EXISTS (SELECT FROM organizations o WHERE o.id = m.organization_id)"
                )
                await raw.execute("VACUUM (TRUNCATE false) organizations, organization_names")
            counted = (
                "SELECT c.relname, c.reltuples FROM pg_class c WHERE c.relnamespace ="
                " pg_my_temp_schema() AND c.relname IN ('organizations', $1)"
            )

            session = AsyncSession(bind=conn)
            async with session.begin():
                # the import's transaction: its settings, its chunks written, their GIN lists
                # merged as the import does
                await session.execute(IMPORT_SETTINGS, {"similarity": str(NAME_SIMILARITY)})
                assert raw.is_in_transaction()
                await raw.execute("SET LOCAL statement_timeout = '120s'")
                await raw.execute(FILL_ORGANIZATIONS, 1, NAMES)
                await raw.execute(FILL_NAMES)
                await session.execute(MERGE_PENDING, {"probed": True})
                partition = await raw.fetchval(
                    "SELECT CAST(tableoid AS regclass)::text FROM organization_names"
                    " WHERE direction = 'sales' LIMIT 1"
                )
                before = dict(await raw.fetch(counted, partition))
                assert before == {"organizations": kept, partition: kept}

                analyzed = await analyze_undercounted(session, NAMES, {"sales": NAMES})

                # the transaction's own rows counted, the other partitions left alone
                assert sorted(analyzed) == sorted(["organizations", partition])
                after = dict(await raw.fetch(counted, partition))
                assert after == {"organizations": NAMES + kept, partition: NAMES + kept}
                assert await analyze_undercounted(session, NAMES, {"sales": NAMES}) == []

                look_up = LookUp(
                    "organization_names", similar_names(False, sees_all), NAMES_TYPES, ""
                )
                prepare, names = _prepare(look_up)
                await raw.execute(prepare)
                await raw.execute(f"SET LOCAL plan_cache_mode = {plans}")
                created = await raw.fetch(
                    "SELECT id FROM organizations ORDER BY legal_name OFFSET $1", NAMES - NEW
                )
                values = {
                    "nums": list(range(1, NEW + 1)),
                    "positions": list(range(1, NEW + 1)),
                    "created": [row["id"] for row in created],
                    "threshold": NAME_SIMILARITY,
                    "limit": 3,
                    "dirs": ["sales"],
                }
                found = await raw.fetchval(
                    "EXPLAIN (ANALYZE, FORMAT JSON)"
                    f" EXECUTE look_up({_literals(look_up, names, values)})"
                )
                plan = (found if isinstance(found, list) else json.loads(found))[0]["Plan"]
                await raw.execute("DEALLOCATE look_up")

        assert plan["Actual Rows"] >= NEW // 3  # the later name of a pair found the earlier
        # each new name read the few names sharing its trigrams and their organizations, not
        # every name or organization of the direction
        assert _examined(plan, "organization_names") < NEW * NAMES // 100
        assert _examined(plan, "organizations") < NEW * NAMES // 100
    finally:
        await engine.dispose()
