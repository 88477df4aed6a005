"""Reminders: PostgreSQL is the record, a Redis sorted set the schedule index.

- A scheduled (or rescheduled) reminder is upserted in PostgreSQL and added to the sorted set
  (score = due time); a cancelled one is marked and removed. Redis writes are best effort.
- Every tick each replica reads the due ids from the sorted set and claims them in PostgreSQL
  with ``UPDATE ... SET state='fired' WHERE state='scheduled' AND due_at <= now() RETURNING``:
  the row lock makes exactly one replica win a reminder, which creates its delivery and its
  ``notifier.reminder.fired`` event in the same transaction.
- The index is rebuilt from PostgreSQL at start and whenever its marker key is gone (a Redis
  restart), and a reconcile sweep fires anything overdue straight from PostgreSQL, so neither a
  notifier restart nor a Redis restart loses a reminder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Sequence
from typing import Any

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifications import (
    NotificationRequested,
    Recipient,
    ReminderCancelled,
    ReminderScheduled,
)
from clientele_shared.events.schemas.notifier import REMINDER_FIRED, ReminderFired
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from prometheus_client import Histogram
from redis.asyncio import Redis
from sqlalchemy import Row, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier import delivery
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.store import reminders

log = get_logger(__name__)

INDEX = "notifier:reminders:due"
INDEX_BUILT = "notifier:reminders:index-built"
FIRE_BATCH = 500
UNKNOWN_GRACE = 60.0

FIRING_DELAY = Histogram(
    "clientele_notifier_reminder_delay_seconds",
    "Delay between a reminder's due time and its firing",
    buckets=(0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)


async def apply_scheduled(
    session: AsyncSession, requester: str, envelope: Envelope, event: ReminderScheduled
) -> bool:
    """Upsert the reminder unless a newer event changed it or it has fired; True if changed."""
    values = {
        "requester": requester,
        "state": "scheduled",
        "due_at": event.due_at,
        "recipient": event.recipient.model_dump(mode="json", exclude_none=True),
        "channel": event.channel.value,
        "kind": event.kind,
        "subject": event.subject,
        "text": event.text,
        "payload": event.payload,
        "changed_by_event_at": envelope.occurred_at,
    }
    stmt = insert(reminders).values(id=event.reminder_id, **values)
    changed = await session.scalar(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_=values,
            where=(reminders.c.requester == requester)
            & (reminders.c.state != "fired")
            & (reminders.c.changed_by_event_at <= envelope.occurred_at),
        ).returning(reminders.c.id)
    )
    return changed is not None


async def apply_cancelled(
    session: AsyncSession, requester: str, envelope: Envelope, event: ReminderCancelled
) -> None:
    """Mark the reminder cancelled; an unknown one gets a tombstone so a late older schedule
    event does not bring it back."""
    stmt = insert(reminders).values(
        id=event.reminder_id,
        requester=requester,
        state="cancelled",
        due_at=envelope.occurred_at,
        recipient={},
        channel="inapp",
        kind="reminder",
        subject="",
        changed_by_event_at=envelope.occurred_at,
    )
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={"state": "cancelled", "changed_by_event_at": envelope.occurred_at},
            where=(reminders.c.requester == requester)
            & (reminders.c.state == "scheduled")
            & (reminders.c.changed_by_event_at <= envelope.occurred_at),
        )
    )


class ReminderScheduler:
    def __init__(self, runtime: ServiceRuntime, settings: NotifierSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.redis: Redis = runtime.redis
        self.outbox: Outbox = runtime.outbox

    async def index(self, reminder_id: uuid.UUID, due_at: dt.datetime) -> None:
        try:
            await self.redis.zadd(INDEX, {str(reminder_id): due_at.timestamp()})
        except Exception as exc:  # the reconcile sweep and the rebuild cover it
            log.warning("could not index a reminder", error=repr(exc))

    async def unindex(self, reminder_id: uuid.UUID) -> None:
        try:
            await self.redis.zrem(INDEX, str(reminder_id))
        except Exception as exc:
            log.warning("could not unindex a reminder", error=repr(exc))

    async def rebuild(self) -> int:
        """Load every scheduled reminder into the index; returns how many."""
        count = 0
        last: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            stmt = (
                select(reminders.c.id, reminders.c.due_at)
                .where(reminders.c.state == "scheduled")
                .order_by(reminders.c.due_at, reminders.c.id)
                .limit(10_000)
            )
            if last is not None:
                stmt = stmt.where(
                    or_(
                        reminders.c.due_at > last[0],
                        (reminders.c.due_at == last[0]) & (reminders.c.id > last[1]),
                    )
                )
            async with self.runtime.sessions() as session:
                rows = (await session.execute(stmt)).all()
            if not rows:
                break
            await self.redis.zadd(INDEX, {str(r.id): r.due_at.timestamp() for r in rows})
            count += len(rows)
            last = (rows[-1].due_at, rows[-1].id)
        await self.redis.set(INDEX_BUILT, str(time.time()))
        log.info("reminder index rebuilt", reminders=count)
        return count

    async def run(self) -> None:
        """Fire due reminders until cancelled."""
        next_reconcile = 0.0
        while True:
            try:
                if time.monotonic() >= next_reconcile:
                    await self.reconcile()
                    next_reconcile = time.monotonic() + self.settings.reminder_reconcile_interval
                fired = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database may come back
                log.warning("reminder scheduler failed, retrying", error=repr(exc))
                fired = 0
                next_reconcile = 0.0
                await asyncio.sleep(1.0)
            if fired < FIRE_BATCH:
                await asyncio.sleep(self.settings.reminder_tick)

    async def reconcile(self) -> None:
        """Rebuild a lost index; fire overdue reminders the index missed."""
        if not await self.redis.exists(INDEX_BUILT):
            await self.rebuild()
        grace = dt.timedelta(seconds=max(1.0, 10 * self.settings.reminder_tick))
        async with self.runtime.sessions() as session:
            overdue = (
                await session.scalars(
                    select(reminders.c.id)
                    .where(
                        reminders.c.state == "scheduled",
                        reminders.c.due_at <= func.clock_timestamp() - grace,
                    )
                    .order_by(reminders.c.due_at)
                    .limit(FIRE_BATCH)
                )
            ).all()
        if overdue:
            log.warning("firing overdue reminders missing from the index", count=len(overdue))
            await self.fire([str(i) for i in overdue])

    async def tick(self) -> int:
        due = await self.redis.zrangebyscore(
            INDEX, "-inf", time.time(), start=0, num=FIRE_BATCH, withscores=True
        )
        if not due:
            return 0
        scores: dict[str, float] = {}
        for item in due:
            member, score = item[0], item[1]
            scores[member.decode() if isinstance(member, bytes) else str(member)] = float(score)
        return await self.fire(list(scores), scores)

    async def fire(self, ids: Sequence[str], scores: dict[str, float] | None = None) -> int:
        """Claim and fire the given reminders once; clean the index of what is not due.

        An id PostgreSQL does not know may belong to a transaction not yet committed (the index
        is written before the commit): it is dropped only once it is a minute overdue.
        """
        wanted = [uuid.UUID(i) for i in ids]
        async with self.runtime.sessions() as session, session.begin():
            fired = (
                await session.execute(
                    update(reminders)
                    .where(
                        reminders.c.id.in_(wanted),
                        reminders.c.state == "scheduled",
                        reminders.c.due_at <= func.clock_timestamp(),
                    )
                    .values(state="fired", fired_at=func.clock_timestamp())
                    .returning(*reminders.c)
                )
            ).all()
            for row in fired:
                await self._deliver(session, row)
        fired_ids = {row.id for row in fired}
        for row in fired:
            FIRING_DELAY.observe((row.fired_at - row.due_at).total_seconds())
        rest = [i for i in wanted if i not in fired_ids]
        stale: list[str] = [str(i) for i in fired_ids]
        if rest:
            async with self.runtime.sessions() as session:
                pending = (
                    await session.execute(
                        select(reminders.c.id, reminders.c.due_at, reminders.c.state).where(
                            reminders.c.id.in_(rest)
                        )
                    )
                ).all()
            known = {row.id: row for row in pending}
            for reminder_id in rest:
                found = known.get(reminder_id)
                if found is None:
                    score = (scores or {}).get(str(reminder_id), 0.0)
                    if time.time() - score > UNKNOWN_GRACE:
                        stale.append(str(reminder_id))
                elif found.state != "scheduled":
                    stale.append(str(reminder_id))
                elif found.due_at.timestamp() > time.time():
                    await self.index(reminder_id, found.due_at)  # rescheduled: fix the score
        if stale:
            await self.redis.zrem(INDEX, *stale)
        return len(fired)

    async def _deliver(self, session: AsyncSession, row: Row[Any]) -> None:
        recipient = Recipient.model_validate(row.recipient)
        request = NotificationRequested(
            idempotency_key=f"reminder:{row.id}",
            channel=row.channel,
            kind=row.kind,
            recipients=[recipient],
            subject=row.subject,
            text=row.text or row.subject,
            template="reminder",
            data=row.payload,
        )
        await delivery.accept_request(
            session,
            self.outbox,
            requester=row.requester,
            request=request,
            event_id=None,
            now=row.fired_at,
        )
        await self.outbox.publish(
            session,
            REMINDER_FIRED,
            ReminderFired(
                reminder_id=row.id,
                requester=row.requester,
                recipient=recipient.employee_id or recipient.email or recipient.endpoint or "",
                due_at=row.due_at,
                fired_at=row.fired_at,
            ),
            aggregate_id=str(row.id),
        )
