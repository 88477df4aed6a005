"""Idempotent consumers: inbox in the effect's transaction, commit after it, retry, dead-letter."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NoReturn

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import BaseModel, ValidationError
from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.registry import Registry, UnknownEventError
from clientele_shared.observability import (
    CONSUMER_LAG,
    DEAD_LETTERS,
    HANDLER_LATENCY,
    causation_id_var,
    correlation_id_var,
    get_logger,
)

Handler = Callable[[AsyncSession, Envelope, BaseModel], Awaitable[None]]
"""Applies one event inside the inbox transaction; raise to retry."""

_Received = tuple[ConsumerRecord[bytes, bytes], Envelope, BaseModel]


def _bind(envelope: Envelope) -> None:
    """Log lines and events caused by this event carry its correlation and causation ids."""
    correlation_id_var.set(envelope.correlation_id)
    causation_id_var.set(str(envelope.event_id))


log = get_logger(__name__)


class InfrastructureError(Exception):
    """The database is unreachable: do not dead-letter, redeliver once it is back."""


def _is_infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | OSError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


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
    seen before apply their effects, all in one transaction. Offsets are committed only after that
    commit (FastStream NACK_ON_ERROR: ack after success, seek back on an unhandled error). If any
    handler fails, the transaction rolls back and the batch is applied again one event per
    transaction: a failing handler is retried with back-off, and after the last attempt its record
    goes to the dead-letter topic while the rest of the partition moves on. A database outage is
    never dead-lettered: the batch is redelivered once the database is back.
    """

    def __init__(
        self,
        service: str,
        broker: KafkaBroker,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Table,
        registry: Registry,
        dead_letter_producer: AIOKafkaProducer,
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
        self.subscriptions: list[tuple[str, str]] = []

    def subscribe(self, topic: str, name: str, handler: Handler) -> None:
        """Consume `topic` as consumer group `<service>.<name>` with `handler`."""
        self.registry.check_consume(self.service, topic)
        consumer = f"{self.service}.{name}"
        self.subscriptions.append((topic, consumer))

        async def on_batch(msg: KafkaMessage) -> None:
            records: tuple[ConsumerRecord[bytes, bytes], ...] = msg.raw_message
            await self._process_batch(topic, consumer, handler, records, msg)

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
        handler: Handler,
        records: tuple[ConsumerRecord[bytes, bytes], ...],
        msg: KafkaMessage,
    ) -> None:
        """Apply a fetched batch in one transaction; if any event fails, one by one."""
        started = time.perf_counter()
        valid: list[_Received] = []
        for record in records:
            received = await self._validate(topic, consumer, record)
            if received is not None:
                valid.append(received)
        outcome = "applied"
        if valid:
            try:
                await self._apply_batch(consumer, handler, valid)
            except Exception as exc:
                if _is_infrastructure(exc):
                    await self._wait_for_infrastructure(exc)
                log.info(
                    "a batch failed, applying its events one by one",
                    consumer=consumer,
                    events=len(valid),
                    error=repr(exc),
                )
                for record, envelope, payload in valid:
                    await self._apply_with_retries(
                        topic, consumer, handler, envelope, payload, record
                    )
                outcome = "one_by_one"
        self._observe_lag(topic, consumer, msg, records)
        HANDLER_LATENCY.labels(self.service, consumer, topic, outcome).observe(
            time.perf_counter() - started
        )

    async def _validate(
        self, topic: str, consumer: str, record: ConsumerRecord[bytes, bytes]
    ) -> _Received | None:
        """The envelope and typed payload of a record; an invalid one is dead-lettered at once."""
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

    async def _apply_batch(self, consumer: str, handler: Handler, valid: list[_Received]) -> None:
        """Claim every event in the inbox with one statement and apply the new ones, atomically."""
        async with self.sessions() as session, session.begin():
            claimed = set(
                (
                    await session.scalars(
                        insert(self.inbox)
                        .values(
                            [
                                {
                                    "consumer": consumer,
                                    "event_id": envelope.event_id,
                                    "event_type": envelope.type,
                                }
                                for _, envelope, _ in valid
                            ]
                        )
                        .on_conflict_do_nothing()
                        .returning(self.inbox.c.event_id)
                    )
                ).all()
            )
            for _, envelope, payload in valid:
                if envelope.event_id in claimed:
                    claimed.discard(envelope.event_id)  # a record twice in one batch: once
                    _bind(envelope)
                    await handler(session, envelope, payload)

    async def _wait_for_infrastructure(self, exc: BaseException) -> NoReturn:
        log.warning("database unavailable, will redeliver", error=repr(exc))
        await asyncio.sleep(self.retry.max_backoff)
        raise InfrastructureError(str(exc)) from exc

    async def _apply_with_retries(
        self,
        topic: str,
        consumer: str,
        handler: Handler,
        envelope: Envelope,
        payload: BaseModel,
        record: ConsumerRecord[bytes, bytes],
    ) -> str:
        for attempt in range(1, self.retry.max_attempts + 1):
            try:
                return await self._apply(consumer, handler, envelope, payload)
            except Exception as exc:
                if _is_infrastructure(exc):
                    await self._wait_for_infrastructure(exc)
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
        self, consumer: str, handler: Handler, envelope: Envelope, payload: BaseModel
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
            _bind(envelope)
            await handler(session, envelope, payload)
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
