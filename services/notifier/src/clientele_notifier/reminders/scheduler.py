"""Reminders: PostgreSQL is the record, a Redis sorted set the schedule index (ADR 7, ADR 12).

- A scheduled (or rescheduled) reminder is upserted in PostgreSQL and added to the sorted set
  (score = due time); a cancelled one is marked and removed. Redis writes are best effort.
- REMINDER_FIRERS loops per replica read the due ids of their share of the sorted set and fire
  up to FIRE_BATCH at once: ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE ... SET
  state='fired' ... RETURNING``, so exactly one replica wins a reminder; its delivery (an in-app
  one stored there and then), the ``notifier.reminder.fired`` event and the result event are
  written with one multi-row statement per table in the same transaction.
- The index is rebuilt from PostgreSQL at start and whenever its marker key is gone (a Redis
  restart), and a reconcile sweep fires overdue reminders the index misses straight from
  PostgreSQL, so neither a notifier restart nor a Redis restart loses a reminder.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
import zlib
from collections.abc import Sequence

from clientele_shared.events.outbox import Outbox
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from prometheus_client import Histogram
from redis.asyncio import Redis
from redis.exceptions import RedisError

from clientele_notifier.inbox.live import InboxHub
from clientele_notifier.reminders import service
from clientele_notifier.settings import NotifierSettings

log = get_logger(__name__)

INDEX = "notifier:reminders:due"
INDEX_BUILT = "notifier:reminders:index-built"
FIRE_BATCH = 500
"""Reminders fired per transaction, at most."""
UNKNOWN_GRACE = 60.0
"""Seconds past its due time before an id PostgreSQL does not know leaves the index."""
INDEX_LINGER = 0.005
"""How long queued index writes wait for the rest of a consumed batch."""
BATCH_WINDOW = 0.02
"""The shortest pause between two claims while reminders keep falling due: under load they
fire in batches (one transaction each) instead of one by one."""

FIRING_DELAY = Histogram(
    "clientele_notifier_reminder_delay_seconds",
    "Delay between a reminder's due time and its firing",
    buckets=(0.01, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
)


class ReminderScheduler:
    def __init__(
        self,
        runtime: ServiceRuntime,
        settings: NotifierSettings,
        hub: InboxHub,
    ) -> None:
        self.runtime = runtime
        self.settings = settings
        self.hub = hub
        self.redis: Redis = runtime.redis
        self.outbox: Outbox = runtime.outbox
        self._index_changes: dict[str, float | None] = {}
        self._index_changed = asyncio.Event()

    def index(self, reminder_id: uuid.UUID, due_at: dt.datetime | None) -> None:
        """Queue an index change (None removes): the index writer sends the queued changes
        in one pipeline moments later, the last change of a reminder winning."""
        self._index_changes[str(reminder_id)] = None if due_at is None else due_at.timestamp()
        self._index_changed.set()

    async def write_index(self) -> None:
        """Send the queued index changes until cancelled. Best effort: a change lost with Redis
        or with this process is covered by the rebuild and the reconcile sweep."""
        while True:
            await self._index_changed.wait()
            await asyncio.sleep(INDEX_LINGER)  # the rest of a consumed batch joins
            self._index_changed.clear()
            changes, self._index_changes = self._index_changes, {}
            added = {member: score for member, score in changes.items() if score is not None}
            removed = [member for member, score in changes.items() if score is None]
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    if added:
                        pipe.zadd(INDEX, added)
                    if removed:
                        pipe.zrem(INDEX, *removed)
                    await pipe.execute()
            except Exception as exc:
                log.warning("could not update the reminder index", error=repr(exc))

    async def rebuild(self) -> int:
        """Load every scheduled reminder into the index; returns how many."""
        count = 0
        last: tuple[dt.datetime, uuid.UUID] | None = None
        while True:
            rows = await service.scheduled_after(runtime=self.runtime, last=last, limit=10_000)
            if not rows:
                break
            await self.redis.zadd(INDEX, {str(r.id): r.due_at.timestamp() for r in rows})
            count += len(rows)
            last = (rows[-1].due_at, rows[-1].id)
        await self.redis.set(INDEX_BUILT, str(time.time()))
        log.info("reminder index rebuilt", reminders=count)
        return count

    async def run(self) -> None:
        """Fire due reminders until cancelled, with REMINDER_FIRERS claims under way at once
        (each on its own share of the reminders: one's database round trips overlap another's
        work); the first also reconciles the index with PostgreSQL."""
        parts = self.settings.reminder_firers
        await asyncio.gather(*(self._fire_loop(part, parts) for part in range(parts)))

    async def _fire_loop(self, part: int, parts: int) -> None:
        """Fire at once while a full batch is due, else at the next due time (but at least
        BATCH_WINDOW later: what falls due meanwhile fires in the same transaction) or after a
        tick, whichever comes first."""
        next_reconcile = 0.0
        while True:
            if part == 0 and time.monotonic() >= next_reconcile:
                try:
                    await self.reconcile()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database may come back
                    log.warning("reminder reconcile failed", error=repr(exc))
                next_reconcile = time.monotonic() + self.settings.reminder_reconcile_interval
            try:
                fired, next_due = await self.tick(part, parts)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database may come back
                log.warning("reminder scheduler failed, retrying", error=repr(exc))
                fired, next_due = 0, None
                await asyncio.sleep(1.0)
            if fired < FIRE_BATCH:
                pause = self.settings.reminder_tick
                if next_due is not None:
                    pause = min(pause, max(BATCH_WINDOW, next_due - time.time()))
                await asyncio.sleep(pause)

    async def reconcile(self) -> None:
        """Rebuild a lost index; fire overdue reminders the index misses (all overdue ones
        while Redis is unreachable: PostgreSQL alone still fires them, later)."""
        try:
            if not await self.redis.exists(INDEX_BUILT):
                await self.rebuild()
        except RedisError as exc:
            log.warning("reminder index unreachable", error=repr(exc))
        grace = dt.timedelta(seconds=max(1.0, 10 * self.settings.reminder_tick))
        overdue = [
            str(i)
            for i in await service.overdue(runtime=self.runtime, grace=grace, limit=FIRE_BATCH)
        ]
        if not overdue:
            return
        try:  # those still in the index are only behind (a backlog): the ticks fire them
            scores = await self.redis.zmscore(INDEX, overdue)
            missing = [i for i, score in zip(overdue, scores, strict=True) if score is None]
        except RedisError:
            missing = overdue
        if missing:
            log.warning("firing overdue reminders missing from the index", count=len(missing))
            await self.fire(missing)

    async def tick(self, part: int = 0, parts: int = 1) -> tuple[int, float | None]:
        """Fire what the index says is due of this firer's share; returns how many fired and
        the next due time (epoch seconds) after now the index holds, if any."""
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(INDEX, "-inf", now, start=0, num=FIRE_BATCH * parts)
            pipe.zrangebyscore(INDEX, f"({now}", "+inf", start=0, num=1, withscores=True)
            head, upcoming = await pipe.execute()
        next_due = float(upcoming[0][1]) if upcoming else None
        due: list[str] = []
        for member in head:
            name = member.decode() if isinstance(member, bytes) else str(member)
            if parts == 1 or zlib.crc32(name.encode()) % parts == part:
                due.append(name)
                if len(due) == FIRE_BATCH:
                    break
        if not due:
            return 0, next_due
        return await self.fire(due), next_due

    async def fire(self, ids: Sequence[str]) -> int:
        """Claim the given reminders that are due and fire them once, in one transaction; clean
        the index of what is not due.

        Locking and updating are two plain statements (no plan joins the table with itself).
        The claim skips rows another transaction holds (a replica firing them, a consumer
        rescheduling them): they stay in the index for the next tick. An id PostgreSQL does not
        know may belong to a transaction not yet committed (the index is written before the
        commit): it is dropped only once it is a minute overdue.
        """
        wanted = [uuid.UUID(i) for i in ids]
        fired = await service.fire(runtime=self.runtime, hub=self.hub, ids=wanted)
        fired_ids = {row.id for row in fired}
        for row in fired:
            FIRING_DELAY.observe((row.fired_at - row.due_at).total_seconds())
        rest = [i for i in wanted if i not in fired_ids]
        stale: list[str] = [str(i) for i in fired_ids]
        moved: dict[str, float] = {}
        if rest:
            pending = await service.states(runtime=self.runtime, ids=rest)
            known = {row.id: row for row in pending}
            unknown = [str(i) for i in rest if i not in known]
            if unknown:  # not in PostgreSQL (yet?): dropped once a minute past due
                scores = await self.redis.zmscore(INDEX, unknown)
                stale.extend(
                    member
                    for member, score in zip(unknown, scores, strict=True)
                    if score is not None and time.time() - float(score) > UNKNOWN_GRACE
                )
            for reminder_id in rest:
                found = known.get(reminder_id)
                if found is None:
                    continue
                if found.state != "scheduled":
                    stale.append(str(reminder_id))
                elif found.due_at.timestamp() > time.time():
                    moved[str(reminder_id)] = found.due_at.timestamp()  # rescheduled
        if stale or moved:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    if stale:
                        pipe.zrem(INDEX, *stale)
                    if moved:
                        pipe.zadd(INDEX, moved)
                    await pipe.execute()
            except RedisError as exc:  # fired ones are skipped by the claim; cleaned up later
                log.warning("could not clean the reminder index", error=repr(exc))
        return len(fired)
