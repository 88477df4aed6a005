"""Bulk writes: many rows of one table with one COPY, in the caller's transaction."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from pydantic_core import to_json
from sqlalchemy import Insert, Table, insert, literal, select, union_all
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

COPY_FROM = 1000
"""From this many rows a bulk write uses COPY (one statement) instead of a multi-row insert."""


def _one(column: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A record of one column (``itemgetter`` of one key gives the value, not a tuple)."""
    return lambda row: (row[column],)


class Copy:
    """Rows of one table as COPY records (JSONB columns as JSON text), then written with COPY
    in the session's transaction: one statement, so the table's statement triggers run once,
    and the fastest way in. Building the records needs no connection (a worker thread may)."""

    def __init__(self, table: Table, columns: list[str], records: list[tuple[Any, ...]]) -> None:
        self.table, self.columns, self.records = table, columns, records

    @classmethod
    def of(cls, table: Table, rows: list[dict[str, Any]]) -> Copy:
        """The rows' records, in the first row's column order (every row has its keys)."""
        if not rows:
            return cls(table, [], [])
        columns = list(rows[0])
        documents = [i for i, name in enumerate(columns) if isinstance(table.c[name].type, JSONB)]
        values = operator.itemgetter(*columns) if len(columns) > 1 else _one(columns[0])
        records: list[tuple[Any, ...]] = []
        for row in rows:
            record = values(row)
            if documents:
                listed = list(record)
                for i in documents:
                    if listed[i] is not None:
                        listed[i] = to_json(listed[i]).decode()
                record = tuple(listed)
            records.append(record)
        return cls(table, columns, records)

    async def write(self, session: AsyncSession) -> bool:
        """Write the records (True), or nothing when there are none (False)."""
        if not self.records:
            return False
        connection = await session.connection()
        raw = await connection.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.copy_records_to_table(
            self.table.name, records=self.records, columns=self.columns
        )
        return True


TOGETHER_UP_TO = 20
"""Batches of at most this many rows each are written in one statement by :func:`insert_together`
(larger batches go one statement each)."""


def _cached_insert(table: Table, rows: list[dict[str, Any]]) -> Insert:
    """An INSERT of ``rows`` that SQLAlchemy compiles once per shape and then takes from its
    cache: one row as ``VALUES``, more as ``INSERT … SELECT … UNION ALL SELECT …`` in their order
    (a multi-row ``VALUES`` has no cache key, so it was compiled again on every write)."""
    if len(rows) == 1:
        return insert(table).values(rows[0])
    columns = list(rows[0])
    if any(list(row) != columns for row in rows):
        return insert(table).values(rows)  # rows of different columns: not cached
    selects = [
        select(
            *(
                (
                    value
                    if isinstance(value, ColumnElement)
                    else literal(value, table.c[name].type)
                ).label(name)
                for name, value in row.items()
            )
        )
        for row in rows
    ]
    return insert(table).from_select(columns, union_all(*selects))


async def insert_together(
    session: AsyncSession, batches: Sequence[tuple[Table, list[Any]]]
) -> None:
    """Rows of several tables (each table once) in one round trip: the first batches as
    data-modifying CTEs of the last one's INSERT (PostgreSQL runs every one of them, in the
    caller's transaction), each batch's rows in their order. The statement is compiled once
    per shape (tables, row counts, columns) and then taken from SQLAlchemy's cache. Batches
    larger than ``TOGETHER_UP_TO`` rows are written one statement each, as a plain
    executemany."""
    batches = [(table, rows) for table, rows in batches if rows]
    if not batches:
        return
    if any(len(rows) > TOGETHER_UP_TO for _, rows in batches):
        for table, rows in batches:
            await session.execute(insert(table), rows)
        return
    *first, (last_table, last_rows) = batches
    statement = _cached_insert(last_table, last_rows)
    for n, (table, rows) in enumerate(first):
        statement = statement.add_cte(_cached_insert(table, rows).cte(f"together_{n}"))
    await session.execute(statement)
