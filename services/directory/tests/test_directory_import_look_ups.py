"""The imports' look-ups of the records a chunk's e-mails and phones match (ADR 75), against real
PostgreSQL, under the statistics a table being filled by an import has: counted empty (vacuumed
after a discarded import, its pages kept) while it holds thousands of rows, with the plan a
prepared statement caches for any values (generic) and one made for the values given (custom).
Each value reads only the records holding it, never a test of every value against every record.

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
from clientele_directory.imports.queries import MATCHING_IDS
from clientele_directory.person_imports.queries import MATCHING_PERSON_IDS
from clientele_testkit.infra import Infrastructure
from sqlalchemy import TextClause

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


def _examined(node: dict[str, Any], table: str) -> int:
    """The rows of ``table`` a plan's nodes read (kept or filtered out, over all their loops),
    and the pairs its joins tested and refused."""
    rows = int(node.get("Rows Removed by Join Filter", 0))
    if node.get("Relation Name") == table:
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
        literals = ", ".join(
            f"'{{{','.join(values[name])}}}'::{look_up.types[name]}" for name in names
        )
        found = await connection.fetchval(
            f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE look_up({literals})"
        )
        plan = json.loads(found)[0]["Plan"]

        assert plan["Actual Rows"] == 2 * VALUES  # each value found its one record
        # each value read the one record holding it; beside them, the organizations' legs of ids
        # and INNs (empty here) may read the table once, never once per value
        assert _examined(plan, table) <= 2 * VALUES + ROWS
    finally:  # the prepared statement ends with the connection
        await connection.execute(f"DROP TABLE IF EXISTS pg_temp.{table}")
