"""The imports' look-ups of the records a chunk's e-mails and phones match (ADR 75), against real
PostgreSQL, under the statistics a table being filled by an import has: counted empty (vacuumed
after a discarded import, its pages kept) while it holds thousands of rows. Whatever plan is
made, each value is a probe that reads only the records holding it, never a test of every value
against every record.

The look-ups run over a temporary copy of the table (same columns and indexes), which shadows
it for the connection, so the statistics are the test's own."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from clientele_directory.imports.queries import MATCHING_IDS
from clientele_directory.person_imports.queries import MATCHING_PERSON_IDS
from clientele_shared.db import async_url
from clientele_testkit.infra import Infrastructure
from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

pytestmark = pytest.mark.integration

ROWS = 3000
"""Records in the table when the look-up runs; its statistics say none."""
VALUES = 300
"""E-mails and phones of the look-up (as many of each), every one held by one record."""


NUMBERS = " FROM generate_series(CAST(:start AS int), CAST(:start AS int) + CAST(:n AS int) - 1) k"
"""The records' numbers ``k`` of a fill: ``:n`` from ``:start``."""


@dataclass(frozen=True)
class LookUp:
    table: str
    statement: TextClause
    fill: str
    """INSERT of the records of NUMBERS, record ``k`` holding the e-mail
    ``rk@x.ru`` and the phone ``+7999`` and k on 7 digits."""
    params: dict[str, Any]


PERSONS = LookUp(
    "persons",
    MATCHING_PERSON_IDS,
    "INSERT INTO persons (id, first_name, last_name, phones, emails, created_by)"
    " SELECT gen_random_uuid(), 'Иван', 'Петров', jsonb_build_array(jsonb_build_object("
    "'number', '+7999' || lpad(k::text, 7, '0'))), ARRAY['r' || k || '@x.ru'], 'test'" + NUMBERS,
    {},
)
ORGANIZATIONS = LookUp(
    "organizations",
    MATCHING_IDS,
    "INSERT INTO organizations (id, legal_name, status, directions, phones, emails, created_by)"
    " SELECT gen_random_uuid(), 'ООО «Ромашка-' || k || '»', 'active', ARRAY['sales'],"
    " jsonb_build_array(jsonb_build_object('number', '+7999' || lpad(k::text, 7, '0'))),"
    " ARRAY['r' || k || '@x.ru'], 'test'" + NUMBERS,
    {"ids": [], "inns": []},
)


@pytest.fixture
async def connection(infra: Infrastructure, migrated: None) -> AsyncIterator[AsyncConnection]:
    engine = create_async_engine(async_url(infra.test_database_url("directory")))
    try:
        async with engine.connect() as conn:
            yield await conn.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        await engine.dispose()


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
    connection: AsyncConnection, look_up: LookUp, plans: str
) -> None:
    table = look_up.table
    await connection.execute(text(f"CREATE TEMP TABLE {table} (LIKE public.{table} INCLUDING ALL)"))
    try:
        # a discarded import: its rows written, then vacuumed away with the table's pages kept
        await connection.execute(text(look_up.fill), {"start": 1_000_000, "n": ROWS})
        await connection.execute(text(f"DELETE FROM {table}"))
        await connection.execute(text(f"VACUUM (TRUNCATE false) {table}"))
        counted = await connection.scalar(
            text("SELECT reltuples FROM pg_class WHERE oid = CAST(:t AS regclass)"), {"t": table}
        )
        assert counted == 0
        # the next import's rows, the statistics unchanged
        await connection.execute(text(look_up.fill), {"start": 1, "n": ROWS})
        await connection.execute(text(f"SET plan_cache_mode = {plans}"))

        statement = text("EXPLAIN (ANALYZE, FORMAT JSON) " + look_up.statement.text).bindparams(
            *look_up.statement.compile().binds.values()
        )
        params = {
            **look_up.params,
            "emails": [f"r{k}@x.ru" for k in range(1, ROWS, ROWS // VALUES)],
            "phones": [f"+7999{k:07d}" for k in range(2, ROWS, ROWS // VALUES)],
        }
        found = await connection.scalar(statement, params)
        plan = (found if isinstance(found, list) else json.loads(found))[0]["Plan"]

        assert plan["Actual Rows"] == 2 * VALUES  # each value found its one record
        # every record holding a value read once per value, and nothing else
        assert _examined(plan, table) <= 2 * 2 * VALUES
    finally:
        await connection.execute(text(f"DROP TABLE pg_temp.{table}"))
