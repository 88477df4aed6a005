"""SQL of the inbox feature."""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import CursorResult, Row, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.tables import notifications


async def inbox(
    session: AsyncSession, recipient: str, *, unread: bool, limit: int
) -> list[Row[Any]]:
    stmt = select(notifications).where(notifications.c.recipient == recipient)
    if unread:
        stmt = stmt.where(notifications.c.read_at.is_(None))
    stmt = stmt.order_by(notifications.c.created_at.desc(), notifications.c.id).limit(limit)
    return list((await session.execute(stmt)).all())


async def unread_count(session: AsyncSession, recipient: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(notifications)
        .where(notifications.c.recipient == recipient, notifications.c.read_at.is_(None))
    )
    return int(count or 0)


async def mark_read(
    session: AsyncSession, recipient: str, notification_id: uuid.UUID
) -> Row[Any] | None:
    """Mark one notification read (unless it is) and return it; None if not the recipient's."""
    await session.execute(
        update(notifications)
        .where(
            notifications.c.id == notification_id,
            notifications.c.recipient == recipient,
            notifications.c.read_at.is_(None),
        )
        .values(read_at=func.now())
    )
    query = select(notifications).where(
        notifications.c.id == notification_id, notifications.c.recipient == recipient
    )
    return (await session.execute(query)).first()


async def mark_all_read(session: AsyncSession, recipient: str) -> int:
    result = cast(
        CursorResult[Any],
        await session.execute(
            update(notifications)
            .where(notifications.c.recipient == recipient, notifications.c.read_at.is_(None))
            .values(read_at=func.now())
        ),
    )
    return int(result.rowcount)


async def created_after(
    session: AsyncSession, recipient: str, last: uuid.UUID, limit: int
) -> list[Row[Any]]:
    """The recipient's notifications created after ``last`` (creation order, ties by id)."""
    seen = (
        select(notifications.c.created_at, notifications.c.id)
        .where(notifications.c.id == last, notifications.c.recipient == recipient)
        .subquery()
    )
    query = (
        select(notifications)
        .join(
            seen,
            tuple_(notifications.c.created_at, notifications.c.id)
            > tuple_(seen.c.created_at, seen.c.id),
        )
        .where(notifications.c.recipient == recipient)
        .order_by(notifications.c.created_at, notifications.c.id)
        .limit(limit)
    )
    return list((await session.execute(query)).all())
