"""SQL of the read models: version-guarded upserts and look-ups."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession


def _key(table: Table) -> str:
    return str(table.primary_key.columns.values()[0].name)


async def upsert(session: AsyncSession, table: Table, record: BaseModel) -> None:
    """Write a whole record unless a newer version is already stored (an equal version is
    written again: version-less events such as blocking carry the current one)."""
    values = record.model_dump()
    stmt = insert(table).values(**values)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=[_key(table)],
            set_={
                **{k: stmt.excluded[k] for k in values if k != _key(table)},
                "updated_at": func.now(),
            },
            where=table.c.version <= stmt.excluded.version,
        )
    )


async def load(
    session: AsyncSession, table: Table, entity_id: uuid.UUID, *, lock: bool = False
) -> dict[str, Any] | None:
    stmt = select(table).where(table.c[_key(table)] == entity_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return dict(row) if row else None


async def load_many(
    session: AsyncSession, table: Table, ids: Iterable[uuid.UUID]
) -> list[dict[str, Any]]:
    wanted = list(ids)
    if not wanted:
        return []
    rows = (await session.execute(select(table).where(table.c[_key(table)].in_(wanted)))).mappings()
    return [dict(row) for row in rows]
