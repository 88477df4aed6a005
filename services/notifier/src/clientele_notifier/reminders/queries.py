"""SQL of the reminders feature."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, any_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.tables import id_array, reminders


def _upsert_reminder() -> Any:
    """Schedule: insert, or change a reminder of the same requester that has not fired and was
    not changed by a newer event; returns the id when it wrote. Built once (the values come as
    parameters), so applying an event costs no statement construction."""
    stmt = insert(reminders)
    changed = (
        "state",
        "due_at",
        "recipient",
        "channel",
        "kind",
        "subject",
        "text",
        "payload",
        "changed_by_event_at",
    )
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={name: stmt.excluded[name] for name in changed},
        where=(reminders.c.requester == stmt.excluded.requester)
        & (reminders.c.state != "fired")
        & (reminders.c.changed_by_event_at <= stmt.excluded.changed_by_event_at),
    ).returning(reminders.c.id)


def _cancel_reminder() -> Any:
    """Cancel: mark a scheduled reminder of the same requester not changed by a newer event,
    or leave a tombstone for an unknown one; returns the id when it wrote."""
    stmt = insert(reminders)
    return stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={"state": "cancelled", "changed_by_event_at": stmt.excluded.changed_by_event_at},
        where=(reminders.c.requester == stmt.excluded.requester)
        & (reminders.c.state == "scheduled")
        & (reminders.c.changed_by_event_at <= stmt.excluded.changed_by_event_at),
    ).returning(reminders.c.id)


UPSERT_REMINDER = _upsert_reminder()
CANCEL_REMINDER = _cancel_reminder()


async def upsert(session: AsyncSession, values: dict[str, Any]) -> bool:
    return await session.scalar(UPSERT_REMINDER, values) is not None


async def cancel(session: AsyncSession, values: dict[str, Any]) -> bool:
    return await session.scalar(CANCEL_REMINDER, values) is not None


async def reminder(session: AsyncSession, reminder_id: uuid.UUID) -> Row[Any] | None:
    found: Row[Any] | None = (
        await session.execute(select(reminders).where(reminders.c.id == reminder_id))
    ).first()
    return found


async def scheduled_after(
    session: AsyncSession, last: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> list[Row[Any]]:
    """Ids and due times of scheduled reminders after ``last`` (due time, id), in that order."""
    stmt = (
        select(reminders.c.id, reminders.c.due_at)
        .where(reminders.c.state == "scheduled")
        .order_by(reminders.c.due_at, reminders.c.id)
        .limit(limit)
    )
    if last is not None:
        stmt = stmt.where(
            or_(
                reminders.c.due_at > last[0],
                (reminders.c.due_at == last[0]) & (reminders.c.id > last[1]),
            )
        )
    rows: Any = await session.execute(stmt)
    return list(rows.all())


async def overdue(session: AsyncSession, grace: dt.timedelta, limit: int) -> list[uuid.UUID]:
    """Scheduled reminders more than ``grace`` past their due time, the oldest first."""
    found = await session.scalars(
        select(reminders.c.id)
        .where(
            reminders.c.state == "scheduled",
            reminders.c.due_at <= func.clock_timestamp() - grace,
        )
        .order_by(reminders.c.due_at)
        .limit(limit)
    )
    return list(found.all())


async def claim_due(session: AsyncSession, wanted: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """Mark fired the given reminders that are scheduled and due, skipping rows another
    transaction holds; the fired rows. Two plain statements, lock then update (no plan joins
    the table with itself)."""
    claimed = list(
        (
            await session.scalars(
                select(reminders.c.id)
                .where(
                    reminders.c.id == any_(id_array(wanted)),
                    reminders.c.state == "scheduled",
                    reminders.c.due_at <= func.clock_timestamp(),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not claimed:
        return []
    fired = await session.execute(
        update(reminders)
        .where(reminders.c.id == any_(id_array(claimed)))
        .values(state="fired", fired_at=func.clock_timestamp())
        .returning(*reminders.c)
    )
    return list(fired.all())


async def states(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    rows: Any = await session.execute(
        select(reminders.c.id, reminders.c.due_at, reminders.c.state).where(
            reminders.c.id == any_(id_array(ids))
        )
    )
    return list(rows.all())
