"""Bulk writes: many rows of one table with one COPY, in the caller's transaction."""

from __future__ import annotations

from typing import Any

from pydantic_core import to_json
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

COPY_FROM = 1000
"""From this many rows a bulk write uses COPY (one statement) instead of a multi-row insert."""


class Copy:
    """Rows of one table as COPY records (JSONB columns as JSON text), then written with COPY
    in the session's transaction: one statement, so the table's statement triggers run once,
    and the fastest way in. Building the records needs no connection (a worker thread may)."""

    def __init__(self, table: Table, columns: list[str], records: list[tuple[Any, ...]]) -> None:
        self.table, self.columns, self.records = table, columns, records

    @classmethod
    def of(cls, table: Table, rows: list[dict[str, Any]]) -> Copy:
        columns = list(rows[0]) if rows else []
        documents = {name for name in columns if isinstance(table.c[name].type, JSONB)}
        records = [
            tuple(
                to_json(row[name]).decode()
                if name in documents and row[name] is not None
                else row[name]
                for name in columns
            )
            for row in rows
        ]
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
