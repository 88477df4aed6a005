"""SQL of directions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.directions.rules import DirectionRecord
from clientele_directory.tables import directions


def to_direction(row: Any) -> DirectionRecord:
    return DirectionRecord.model_validate(row, from_attributes=True)


async def load(session: AsyncSession, code: str, *, lock: bool = False) -> DirectionRecord | None:
    stmt = select(directions).where(directions.c.code == code)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    return to_direction(row) if row is not None else None


async def listed(session: AsyncSession, *, include_archived: bool) -> list[DirectionRecord]:
    stmt = select(directions).order_by(directions.c.code)
    if not include_archived:
        stmt = stmt.where(directions.c.archived.is_(False))
    return [to_direction(row) for row in (await session.execute(stmt)).all()]


async def insert_direction(session: AsyncSession, values: dict[str, Any]) -> DirectionRecord:
    row = (await session.execute(insert(directions).values(**values).returning(directions))).one()
    return to_direction(row)


async def update_direction(
    session: AsyncSession, code: str, values: dict[str, Any]
) -> DirectionRecord:
    row = (
        await session.execute(
            update(directions)
            .where(directions.c.code == code)
            .values(**values)
            .returning(directions)
        )
    ).one()
    return to_direction(row)
