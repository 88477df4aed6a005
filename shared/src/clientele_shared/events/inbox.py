"""Idempotent consumers: inbox in the effect's transaction, commit after it, retry, dead-letter."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import traceback
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from aiokafka import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    exists,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Delete

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.producer import Producer
from clientele_shared.events.registry import Registry, UnknownEventError
from clientele_shared.events.state import TOMBSTONE, Removal
from clientele_shared.events.tables import inbox_attempts_table
from clientele_shared.failures import Unavailable, is_unavailable
from clientele_shared.observability import (
    CONSUMER_LAG,
    DEAD_LETTERS,
    HANDLER_LATENCY,
    INBOX_PRUNED,
    causation_id_var,
    correlation_id_var,
    get_logger,
)

Handler = Callable[[AsyncSession, Envelope, BaseModel], Awaitable[None]]
"""Applies one event inside the inbox transaction; raise to retry."""

BatchHandler = Callable[[AsyncSession, list[tuple[Envelope, BaseModel]]], Awaitable[None]]
"""Applies a batch's new events (in their order, each once) inside the inbox transaction,
binding each with :func:`bind` while it works on it; raise to retry: the events are then
applied again one per transaction, each as a batch of one."""

_Received = tuple[ConsumerRecord[bytes, bytes], Envelope, BaseModel]
_TOMBSTONES = uuid.UUID("6f1c2d4e-9a57-4c1b-8d0e-5b7a3e2f9c10")
"""The namespace of the made-up event ids of tombstones."""


def tombstone_event_id(topic: str, partition: int, offset: int) -> uuid.UUID:
    """The inbox's event id of the tombstone at ``offset``: a redelivery has the same one."""
    return uuid.uuid5(_TOMBSTONES, f"{topic}:{partition}:{offset}")


def per_event(handler: Handler) -> BatchHandler:
    """A batch handler applying a batch's new events one at a time with ``handler``."""

    async def each(session: AsyncSession, events: list[tuple[Envelope, BaseModel]]) -> None:
        for envelope, payload in events:
            bind(envelope)
            await handler(session, envelope, payload)

    return each


def in_lock_order(received: list[_Received]) -> list[_Received]:
    """A batch's events sorted by their record's key, each key's in offset order (ADR 59).

    Two consumers of one entity (its state topic and its change topic) lock the same read-model
    rows in their batch transactions; applied in arrival order, two batches holding a record's
    row each and wanting the other's deadlock. In key order every batch takes its rows in one
    global order, so one waits for the other instead. The sort is stable: a key lives in one
    partition, so its events keep their order; events of different keys had none to keep.
    """
    return sorted(received, key=lambda item: item[0].key or b"")


def bind(envelope: Envelope) -> None:
    """Log lines and events caused by this event carry its correlation and causation ids."""
    correlation_id_var.set(envelope.correlation_id)
    causation_id_var.set(str(envelope.event_id))


log = get_logger(__name__)


class InfrastructureError(Unavailable):
    """The database is unreachable: do not dead-letter, redeliver once it is back."""


class ConsumerCrashed(Exception):
    """An event during whose processing the consumer process died again and again."""


@dataclass
class _Outage:
    """A consumer group waiting for the database: since when, how many tries, the last error."""

    since: float
    tries: int = 0
    error: str = ""


@dataclass(frozen=True)
class RetryPolicy:
    """In-process attempts with exponential back-off before a record is dead-lettered."""

    max_attempts: int = 5
    initial_backoff: float = 0.2
    max_backoff: float = 5.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1)))


class EventConsumer:
    """Registers FastStream subscribers that apply each event exactly once.

    Records arrive in batches (up to `batch_size`). Each record's envelope and payload are
    validated against the registry (invalid: straight to the dead-letter topic). The batch's inbox
    rows (consumer, event id) are inserted with one statement and the handlers of the events not
    seen before apply their effects in their records' key order (:func:`in_lock_order`), all in
    one transaction. Offsets are committed only after that
    commit (FastStream NACK_ON_ERROR: ack after success, seek back on an unhandled error). If any
    handler fails, the transaction rolls back and the batch is applied again one event per
    transaction: a failing handler is retried with back-off, and after the last attempt its record
    goes to the dead-letter topic while the rest of the partition moves on. A database outage is
    never dead-lettered (see `clientele_shared.failures`: connection errors, SQLSTATE classes 08
    and 53, shutdowns, pool timeouts): the batch fails after a back-off that grows while the
    outage lasts, and is redelivered until the database is back.

    A record that kills the process (out of memory, a crash in a native library, a pod killed
    for running too long) would be redelivered forever, since in-process attempts die with the
    process. So after a restart or a rebalance, the first `batch_size` records of each partition
    (where the record that killed the previous owner must lie: they were not committed) are
    marked in `inbox_attempts` before they are applied; the applying transaction deletes the
    marks. Marks found on arrival mean the previous try died: that batch is applied one event at
    a time, each attempt counted and committed before it starts, and an event whose count
    exceeds the retry policy's attempts is dead-lettered. Steady state pays nothing for this.
    """

    def __init__(
        self,
        service: str,
        broker: KafkaBroker,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Table,
        registry: Registry,
        dead_letter_producer: Producer,
        *,
        retry: RetryPolicy | None = None,
        batch_size: int = 500,
    ) -> None:
        self.service = service
        self.broker = broker
        self.sessions = sessions
        self.inbox = inbox
        self.registry = registry
        self.producer = dead_letter_producer
        self.retry = retry or RetryPolicy()
        self.batch_size = batch_size
        self.attempts = inbox_attempts_table(MetaData(schema=inbox.schema))
        self.subscriptions: list[tuple[str, str]] = []
        self._next_offset: dict[tuple[str, str, int], int] = {}
        self._guarded_until: dict[tuple[str, str, int], int] = {}
        self._outages: dict[str, _Outage] = {}
        self._claim = (  # one statement text for any batch: compiled and prepared once
            insert(inbox)
            .from_select(
                ["consumer", "event_id", "event_type"],
                select(
                    bindparam("consumer", type_=String),
                    func.unnest(bindparam("event_ids", type_=ARRAY(Uuid))),
                    func.unnest(bindparam("event_types", type_=ARRAY(String))),
                ),
            )
            .on_conflict_do_nothing()
            .returning(inbox.c.event_id)
        )

    def subscribe(self, topic: str, name: str, handler: Handler) -> None:
        """Consume `topic` as consumer group `<service>.<name>` with `handler`."""
        self.subscribe_batch(topic, name, per_event(handler))

    def subscribe_batch(self, topic: str, name: str, handler: BatchHandler) -> None:
        """Consume `topic` as consumer group `<service>.<name>`, a batch's new events at once
        (a handler that shares work between them: one read of the records they touch)."""
        self.registry.check_consume(self.service, topic)
        consumer = f"{self.service}.{name}"
        self.subscriptions.append((topic, consumer))

        async def on_batch(msg: KafkaMessage) -> None:
            records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message
            try:
                await self._process_batch(topic, consumer, handler, records, msg)
            except Exception as exc:
                if is_unavailable(exc):
                    await self._wait_for_infrastructure(consumer, exc)
                raise
            self._outages.pop(consumer, None)

        self.broker.subscriber(
            topic,
            group_id=consumer,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            batch=True,
            max_records=self.batch_size,
            batch_timeout_ms=10,  # FastStream sleeps this long after an empty poll
        )(on_batch)

    async def _process_batch(
        self,
        topic: str,
        consumer: str,
        handler: BatchHandler,
        records: tuple[ConsumerRecord[bytes, bytes], ...],
        msg: KafkaMessage,
    ) -> None:
        """Apply a fetched batch in one transaction; if any event fails, one by one."""
        started = time.perf_counter()
        guarded = self._guarded(topic, consumer, records)
        valid: list[_Received] = []
        for record in records:
            received = await self._validate(topic, consumer, record)
            if received is not None:
                valid.append(received)
        outcome = "applied"
        if valid and guarded and not await self._mark(consumer, valid):
            for received in valid:
                await self._apply_counted(topic, consumer, handler, received)
            outcome = "after_crash"
        elif valid:
            try:
                await self._apply_batch(consumer, handler, valid, unmark=guarded)
            except Exception as exc:
                if is_unavailable(exc):
                    raise InfrastructureError(str(exc)) from exc
                log.info(
                    "a batch failed, applying its events one by one",
                    consumer=consumer,
                    events=len(valid),
                    error=repr(exc),
                )
                for received in valid:
                    await self._apply_with_retries(topic, consumer, handler, received)
                if guarded:
                    await self._unmark(consumer, [envelope.event_id for _, envelope, _ in valid])
                outcome = "one_by_one"
        for record in records:
            self._next_offset[(consumer, topic, record.partition)] = record.offset + 1
        self._observe_lag(topic, consumer, msg, records)
        HANDLER_LATENCY.labels(self.service, consumer, topic, outcome).observe(
            time.perf_counter() - started
        )

    def _guarded(
        self, topic: str, consumer: str, records: tuple[ConsumerRecord[bytes, bytes], ...]
    ) -> bool:
        """Whether the batch has records of the first `batch_size` after a partition's (re)start.

        A partition (re)starts when its batch does not begin where this process's last
        successfully processed batch of it ended: after a start, a rebalance or a seek back.
        """
        guarded = False
        first: dict[int, int] = {}
        for record in records:
            first[record.partition] = min(first.get(record.partition, record.offset), record.offset)
        for partition, offset in first.items():
            key = (consumer, topic, partition)
            if self._next_offset.get(key) != offset:
                self._guarded_until[key] = offset + self.batch_size
            guarded = guarded or offset < self._guarded_until.get(key, 0)
        return guarded

    async def _mark(self, consumer: str, valid: list[_Received]) -> bool:
        """Mark the batch's events as in flight; False if some were already: a try died."""
        ids = list(dict.fromkeys(envelope.event_id for _, envelope, _ in valid))
        async with self.sessions() as session, session.begin():
            marked = (
                await session.scalars(
                    insert(self.attempts)
                    .values([{"consumer": consumer, "event_id": event_id} for event_id in ids])
                    .on_conflict_do_nothing()
                    .returning(self.attempts.c.event_id)
                )
            ).all()
        return len(marked) == len(ids)

    async def _unmark(self, consumer: str, event_ids: list[uuid.UUID]) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(self._unmark_statement(consumer, event_ids))

    def _unmark_statement(self, consumer: str, event_ids: list[uuid.UUID]) -> Delete:
        return delete(self.attempts).where(
            self.attempts.c.consumer == consumer, self.attempts.c.event_id.in_(event_ids)
        )

    async def _count_attempt(self, consumer: str, envelope: Envelope) -> int | None:
        """Count (and commit) one more attempt at an event; None if it is applied already."""
        not_applied = ~exists().where(
            self.inbox.c.consumer == consumer, self.inbox.c.event_id == envelope.event_id
        )
        stmt = (
            insert(self.attempts)
            .from_select(
                ["consumer", "event_id", "attempts"],
                select(
                    literal(consumer, String),
                    literal(envelope.event_id, Uuid),
                    literal(1, Integer),
                ).where(not_applied),
            )
            .on_conflict_do_update(
                index_elements=["consumer", "event_id"],
                set_={"attempts": self.attempts.c.attempts + 1},
            )
            .returning(self.attempts.c.attempts)
        )
        async with self.sessions() as session, session.begin():
            attempts: int | None = await session.scalar(stmt)
        return attempts

    async def _apply_counted(
        self, topic: str, consumer: str, handler: BatchHandler, received: _Received
    ) -> None:
        """Apply an event of a batch whose earlier try died, dead-lettering a repeat killer."""
        record, envelope, _ = received
        attempts = await self._count_attempt(consumer, envelope)
        if attempts is not None and attempts > self.retry.max_attempts:
            crashes = attempts - 1
            log.error(
                "an event stopped the consumer again and again",
                consumer=consumer,
                event_id=str(envelope.event_id),
                crashes=crashes,
            )
            error = ConsumerCrashed(
                f"the consumer stopped {crashes} times while applying this event alone"
            )
            await self._dead_letter(topic, consumer, record, error, attempts=crashes)
        elif attempts is not None:
            await self._apply_with_retries(topic, consumer, handler, received)
        await self._unmark(consumer, [envelope.event_id])

    async def _validate(
        self, topic: str, consumer: str, record: ConsumerRecord[bytes, bytes]
    ) -> _Received | None:
        """The envelope and typed payload of a record; an invalid one is dead-lettered at once.
        A tombstone of a state topic is a :class:`Removal` (its envelope made up, with an id of
        its offset: a redelivered tombstone is recognised like any event)."""
        if record.value is None and (found := self.registry.topics.get(topic)) and found.compacted:
            removal = Removal.of(record.key, record.headers)
            return (
                record,
                Envelope(
                    event_id=tombstone_event_id(topic, record.partition, record.offset),
                    type=TOMBSTONE,
                    schema_version=1,
                    producer=found.owner,
                    correlation_id=f"tombstone:{topic}:{record.partition}:{record.offset}",
                    aggregate_id=removal.key or "-",
                    payload=removal.model_dump(mode="json"),
                ),
                removal,
            )
        try:
            envelope = Envelope.from_bytes(record.value or b"")
            return record, envelope, self.registry.validate(envelope)
        except (ValidationError, UnknownEventError) as exc:
            log.error(
                "rejected an invalid event",
                consumer=consumer,
                topic=topic,
                partition=record.partition,
                offset=record.offset,
                error=str(exc)[:2000],
            )
            await self._dead_letter(topic, consumer, record, exc, attempts=0)
            return None

    async def _apply_batch(
        self, consumer: str, handler: BatchHandler, valid: list[_Received], *, unmark: bool
    ) -> None:
        """Claim every event in the inbox with one statement and apply the new ones, atomically,
        in lock order (:func:`in_lock_order`)."""
        async with self.sessions() as session, session.begin():
            if unmark:
                ids = [envelope.event_id for _, envelope, _ in valid]
                await session.execute(self._unmark_statement(consumer, ids))
            claimed = set(
                (
                    await session.scalars(
                        self._claim,
                        {
                            "consumer": consumer,
                            "event_ids": [envelope.event_id for _, envelope, _ in valid],
                            "event_types": [envelope.type for _, envelope, _ in valid],
                        },
                    )
                ).all()
            )
            new: list[tuple[Envelope, BaseModel]] = []
            for _, envelope, payload in in_lock_order(valid):
                if envelope.event_id in claimed:
                    claimed.discard(envelope.event_id)  # a record twice in one batch: once
                    new.append((envelope, payload))
            if new:
                await handler(session, new)

    async def _wait_for_infrastructure(self, consumer: str, exc: BaseException) -> NoReturn:
        """Back off (longer while the outage lasts), then fail the batch so it is redelivered."""
        outage = self._outages.setdefault(consumer, _Outage(time.monotonic()))
        outage.tries += 1
        outage.error = repr(exc.__cause__ if isinstance(exc, InfrastructureError) else exc)
        log.warning(
            "database unavailable, will redeliver",
            consumer=consumer,
            tries=outage.tries,
            error=outage.error,
        )
        await asyncio.sleep(self.retry.delay(outage.tries))
        if isinstance(exc, InfrastructureError):
            raise exc
        raise InfrastructureError(str(exc)) from exc

    def health(self) -> dict[str, str]:
        """Per consumer group: 'ok', or since when and why it waits for the database."""
        now = time.monotonic()
        return {
            consumer: (
                f"waiting for the database for {now - outage.since:.0f}s: {outage.error}"
                if (outage := self._outages.get(consumer))
                else "ok"
            )
            for _, consumer in self.subscriptions
        }

    async def _apply_with_retries(
        self, topic: str, consumer: str, handler: BatchHandler, received: _Received
    ) -> str:
        record, envelope, payload = received
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return await self._apply(consumer, handler, envelope, payload)
            except Exception as exc:
                if is_unavailable(exc):
                    raise InfrastructureError(str(exc)) from exc
                log.warning(
                    "event handler failed",
                    consumer=consumer,
                    event_id=str(envelope.event_id),
                    event_type=envelope.type,
                    attempt=attempt,
                    error=repr(exc),
                )
                if attempt == self.retry.max_attempts:
                    await self._dead_letter(topic, consumer, record, exc, attempts=attempt)
                    return "dead_letter"
                await asyncio.sleep(self.retry.delay(attempt))
        raise AssertionError("unreachable")

    async def _apply(
        self, consumer: str, handler: BatchHandler, envelope: Envelope, payload: BaseModel
    ) -> str:
        async with self.sessions() as session, session.begin():
            claimed = await session.scalar(
                insert(self.inbox)
                .values(consumer=consumer, event_id=envelope.event_id, event_type=envelope.type)
                .on_conflict_do_nothing()
                .returning(self.inbox.c.event_id)
            )
            if claimed is None:
                return "duplicate"
            bind(envelope)
            await handler(session, [(envelope, payload)])
        return "applied"

    async def _dead_letter(
        self,
        topic: str,
        consumer: str,
        record: ConsumerRecord[bytes, bytes],
        exc: BaseException,
        *,
        attempts: int,
    ) -> None:
        dlt = self.registry.check_consume(self.service, topic).dead_letter
        error = "".join(traceback.format_exception_only(exc)).strip()[:4000]
        headers = [
            *(record.headers or ()),
            ("dlt.error", error.encode()),
            ("dlt.consumer", consumer.encode()),
            ("dlt.attempts", str(attempts).encode()),
            ("dlt.topic", topic.encode()),
            ("dlt.partition", str(record.partition).encode()),
            ("dlt.offset", str(record.offset).encode()),
        ]
        await self.producer.send_and_wait(dlt, value=record.value, key=record.key, headers=headers)
        DEAD_LETTERS.labels(self.service, consumer, topic).inc()
        log.error(
            "dead-lettered a record",
            consumer=consumer,
            topic=topic,
            dead_letter_topic=dlt,
            partition=record.partition,
            offset=record.offset,
            attempts=attempts,
            error=error,
        )

    def _observe_lag(
        self,
        topic: str,
        consumer: str,
        msg: KafkaMessage,
        records: tuple[ConsumerRecord[bytes, bytes], ...],
    ) -> None:
        highwater = getattr(getattr(msg, "consumer", None), "highwater", None)
        if highwater is None:
            return
        last = {record.partition: record.offset for record in records}
        for partition, offset in last.items():
            high = highwater(TopicPartition(topic, partition))
            if high is not None:
                CONSUMER_LAG.labels(self.service, consumer, topic, str(partition)).set(
                    max(0, high - offset - 1)
                )


class InboxPruner:
    """Deletes inbox rows processed longer ago than the retention, a few thousand at a time.

    The retention must outlast any redelivery (an uncommitted batch after a crash or a
    rebalance: minutes). Each batch is one short transaction deleting by primary key the oldest
    rows (found by the processed_at index), so no lock is held long and consumers inserting new
    rows are not blocked; replicas take turns through an advisory lock.
    """

    def __init__(
        self,
        service: str,
        engine: AsyncEngine,
        inbox: Table,
        *,
        retention: dt.timedelta,
        interval: float = 3600.0,
        batch_size: int = 5000,
        pause: float = 0.05,
    ) -> None:
        self.service = service
        self.engine = engine
        self.inbox = inbox
        self.retention = retention
        self.interval = interval
        self.batch_size = batch_size
        self.pause = pause
        self._lock_key = zlib.crc32(f"clientele-inbox-pruner:{service}".encode())

    async def prune_once(self) -> int:
        """Delete every row older than the retention; return how many went."""
        cutoff = dt.datetime.now(dt.UTC) - self.retention
        oldest = (
            select(self.inbox.c.consumer, self.inbox.c.event_id)
            .where(self.inbox.c.processed_at < cutoff)
            .order_by(self.inbox.c.processed_at)
            .limit(self.batch_size)
        )
        statement = delete(self.inbox).where(
            tuple_(self.inbox.c.consumer, self.inbox.c.event_id).in_(oldest)
        )
        total = 0
        while True:
            async with self.engine.begin() as conn:
                if not await conn.scalar(select(func.pg_try_advisory_xact_lock(self._lock_key))):
                    return total  # another replica is pruning
                deleted = (await conn.execute(statement)).rowcount
            total += deleted
            INBOX_PRUNED.labels(self.service).inc(deleted)
            if deleted < self.batch_size:
                return total
            await asyncio.sleep(self.pause)  # let vacuum and the consumers breathe

    async def run(self) -> None:
        """Prune now and then every `interval` seconds, until cancelled."""
        while True:
            pruned = await self.prune_once()
            if pruned:
                log.info("pruned the inbox", rows=pruned, retention=str(self.retention))
            await asyncio.sleep(self.interval)
