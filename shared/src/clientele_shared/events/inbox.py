"""Idempotent consumers: inbox in the effect's transaction, commit after it, retry, dead-letter."""

from __future__ import annotations

import asyncio
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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

    Per record: the envelope and payload are validated against the registry (invalid: straight to
    the dead-letter topic); then the inbox row (consumer, event id) and the handler's effect are
    written in one transaction; a duplicate is skipped. Offsets are committed only after that
    (FastStream NACK_ON_ERROR: ack after success, seek back on an unhandled error). A failing
    handler is retried with back-off; after the last attempt the record goes to the dead-letter
    topic and the partition moves on. A database outage is never dead-lettered: the record is
    redelivered once the database is back.
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
    ) -> None:
        self.service = service
        self.broker = broker
        self.sessions = sessions
        self.inbox = inbox
        self.registry = registry
        self.producer = dead_letter_producer
        self.retry = retry or RetryPolicy()
        self.subscriptions: list[tuple[str, str]] = []

    def subscribe(self, topic: str, name: str, handler: Handler) -> None:
        """Consume `topic` as consumer group `<service>.<name>` with `handler`."""
        self.registry.check_consume(self.service, topic)
        consumer = f"{self.service}.{name}"
        self.subscriptions.append((topic, consumer))

        async def on_message(msg: KafkaMessage) -> None:
            await self._process(topic, consumer, handler, msg)

        self.broker.subscriber(
            topic,
            group_id=consumer,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            max_poll_records=100,
        )(on_message)

    async def _process(
        self, topic: str, consumer: str, handler: Handler, msg: KafkaMessage
    ) -> None:
        record: ConsumerRecord[bytes, bytes] = msg.raw_message
        self._observe_lag(topic, consumer, msg, record)
        started = time.perf_counter()
        try:
            envelope = Envelope.from_bytes(record.value or b"")
            payload = self.registry.validate(envelope)
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
            HANDLER_LATENCY.labels(self.service, consumer, topic, "invalid").observe(
                time.perf_counter() - started
            )
            return

        correlation_id_var.set(envelope.correlation_id)
        causation_id_var.set(str(envelope.event_id))
        outcome = await self._apply_with_retries(
            topic, consumer, handler, envelope, payload, record
        )
        HANDLER_LATENCY.labels(self.service, consumer, topic, outcome).observe(
            time.perf_counter() - started
        )

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
                    log.warning("database unavailable, will redeliver", error=repr(exc))
                    await asyncio.sleep(self.retry.max_backoff)
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
        self, topic: str, consumer: str, msg: KafkaMessage, record: ConsumerRecord[bytes, bytes]
    ) -> None:
        kafka_consumer = getattr(msg, "consumer", None)
        highwater = getattr(kafka_consumer, "highwater", None)
        if highwater is None:
            return
        high = highwater(TopicPartition(record.topic, record.partition))
        if high is not None:
            CONSUMER_LAG.labels(self.service, consumer, topic, str(record.partition)).set(
                max(0, high - record.offset - 1)
            )
