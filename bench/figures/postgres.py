"""PostgreSQL baselines: what later bulk-write figures are compared with."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import asyncpg

from bench.registry import Context, Metric, figure
from bench.stack import new_id


@figure(
    "pg-copy",
    "Baseline D: PostgreSQL COPY of small rows",
    kind="baseline",
    description=(
        "asyncpg `copy_records_to_table` of `rows` rows (bigint, uuid, text of ~20 chars,"
        " timestamptz) into a fresh, logged table without indexes, from the bench process;"
        " the records are built before the clock starts. Rows/s: rows / COPY duration."
    ),
    metrics=[Metric("rows_per_s", "COPY", "rows/s")],
    params={"rows": 100_000},
    timeout=90,
)
async def pg_copy(ctx: Context) -> dict[str, float]:
    count = int(ctx.params["rows"])
    schema = f"bench_copy_{new_id()}"
    now = datetime.now(UTC)
    records = [(seq, uuid.uuid4(), f"contact number {seq:07d}", now) for seq in range(count)]
    conn = await asyncpg.connect(ctx.database_url)
    try:
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        await conn.execute(
            f'CREATE TABLE "{schema}".rows'
            " (id bigint NOT NULL, account_id uuid NOT NULL, name text NOT NULL,"
            " created_at timestamptz NOT NULL)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table(
            "rows",
            schema_name=schema,
            records=records,
            columns=["id", "account_id", "name", "created_at"],
        )
        seconds = time.perf_counter() - started
        copied = await conn.fetchval(f'SELECT count(*) FROM "{schema}".rows')
        if copied != count:
            raise RuntimeError(f"copied {copied} rows, expected {count}")
    finally:
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
    return {"rows_per_s": count / seconds}
