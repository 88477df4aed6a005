"""SQL of the kinds catalogue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.kinds.rules import EventKind
from clientele_campaigns.tables import event_kinds


async def load(session: AsyncSession, code: str, *, lock: bool = False) -> EventKind | None:
    stmt = select(event_kinds).where(event_kinds.c.code == code)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else EventKind.model_validate(dict(row))


async def usable(session: AsyncSession, code: str) -> EventKind | None:
    """The kind if it exists, share-locked till the end of the transaction so that it is not
    archived while an event takes it."""
    stmt = select(event_kinds).where(event_kinds.c.code == code).with_for_update(read=True)
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else EventKind.model_validate(dict(row))


async def listed(session: AsyncSession, *, include_archived: bool) -> list[EventKind]:
    stmt = select(event_kinds).order_by(event_kinds.c.code)
    if not include_archived:
        stmt = stmt.where(~event_kinds.c.archived)
    return [EventKind.model_validate(dict(row)) for row in (await session.execute(stmt)).mappings()]


async def insert_kind(session: AsyncSession, values: dict[str, Any]) -> EventKind:
    row = (
        (await session.execute(insert(event_kinds).values(**values).returning(event_kinds)))
        .mappings()
        .one()
    )
    return EventKind.model_validate(dict(row))


async def update_kind(session: AsyncSession, code: str, values: dict[str, Any]) -> EventKind:
    row = (
        (
            await session.execute(
                update(event_kinds)
                .where(event_kinds.c.code == code)
                .values(**values)
                .returning(event_kinds)
            )
        )
        .mappings()
        .one()
    )
    return EventKind.model_validate(dict(row))
