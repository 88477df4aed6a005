"""The services' Kafka producer: idempotent with acks=all, renewed when aiokafka gives up on it.

aiokafka's idempotent producer can stop sending for good: after a broker restart, a batch
retried across the leader's return can come back ``OutOfOrderSequenceNumber``, and then every
later batch of that partition does too, since aiokafka keeps the producer id and its sequence
gap (the Java client bumps its epoch and goes on). An unexpected error in its sender task ends
the sender, after which every ``send`` raises. A relay or a dead-letter step retrying with that
producer would retry forever. `Producer` wraps one and, once a send or an acknowledgement
failed that way, replaces it with a new one (a new producer id, sequences from zero) at the
next send, which still fails with the error: a caller's batch never goes out through two
producers (which could put a later record of a key before an earlier one), and its retry goes
through the new producer. Nothing is lost: the relay deletes its rows only after every send of
the batch is acknowledged, and a batch sent again is deduplicated by the consumers' inbox
(ADR 76). One `Producer` serves one caller that sends batches (the relay); the dead-letter
step has its own, so that its renewal never falls in the middle of a relay's batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.errors import (
    InvalidProducerEpoch,
    KafkaError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)

from clientele_shared.observability import PRODUCER_RENEWALS, get_logger

log = get_logger(__name__)

FATAL: tuple[type[Exception], ...] = (
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
    InvalidProducerEpoch,
)
"""Answers after which aiokafka's producer (its id and sequences kept) sends nothing more."""

START_TIMEOUT = 30.0
"""How long a new producer may take to start (an idempotent one waits for its producer id,
retrying without end while the broker's coordinator loads)."""

CLOSE_TIMEOUT = 5.0
"""How long ``stop`` waits for the replaced producers still closing."""


def gave_up(exc: BaseException) -> bool:
    """Whether an error of a send means the producer will never send again: one of `FATAL`,
    or the bare ``KafkaError`` aiokafka raises when its sender task died otherwise."""
    return isinstance(exc, FATAL) or type(exc) is KafkaError


class Producer:
    """An ``AIOKafkaProducer`` replaced by a new one when it gives up (see the module)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._client_id = str(options.get("client_id") or "producer")
        self._current: AIOKafkaProducer | None = None  # created by start()
        self._renewing = asyncio.Lock()
        self._given_up: tuple[AIOKafkaProducer, BaseException] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        PRODUCER_RENEWALS.labels(self._client_id)  # the series exists before its first renewal

    @property
    def client(self) -> AIOKafkaClient:
        return self._started().client

    def _started(self) -> AIOKafkaProducer:
        if self._current is None:
            raise RuntimeError("the producer is not started")
        return self._current

    async def start(self) -> None:
        """Create and start the aiokafka producer (one never started holds no connection)."""
        producer = AIOKafkaProducer(**self._options)
        await producer.start()
        self._current = producer

    async def stop(self) -> None:
        """Stop the producer, and wait for the ones it replaced to finish closing."""
        async with self._renewing:
            if self._current is not None:
                await self._current.stop()
            if self._closing:
                _, left = await asyncio.wait(self._closing, timeout=CLOSE_TIMEOUT)
                for task in left:  # still retrying what it held: given up with the process
                    task.cancel()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a record; the future of its acknowledgement (as ``AIOKafkaProducer.send``).
        Raises the error a producer gave up with, once, after replacing it."""
        if self._given_up is not None:
            dead, exc = self._given_up
            await self._renew(dead, exc)
            raise exc
        current = self._started()
        try:
            future: asyncio.Future[Any] = await current.send(
                topic, value=value, key=key, headers=headers
            )
        except Exception as exc:
            if gave_up(exc):
                await self._renew(current, exc)
            raise
        future.add_done_callback(partial(self._acknowledged, current))
        return future

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        return await (await self.send(topic, value, key, headers=headers))

    def _acknowledged(self, producer: AIOKafkaProducer, future: asyncio.Future[Any]) -> None:
        """Note a producer that failed an acknowledgement for good (renewed at the next send)."""
        if future.cancelled() or self._given_up is not None or producer is not self._current:
            return
        exc = future.exception()
        if exc is not None and gave_up(exc):
            self._given_up = (producer, exc)

    async def _renew(self, dead: AIOKafkaProducer, exc: BaseException) -> None:
        """Put a started new producer in place of ``dead`` (once, however many sends saw it
        give up). If Kafka is away the new one does not start and the next send tries again.
        The dead one closes in the background: it may still be delivering what it holds."""
        async with self._renewing:
            if self._current is not dead:
                return
            fresh = AIOKafkaProducer(**self._options)
            try:
                await asyncio.wait_for(fresh.start(), START_TIMEOUT)
            except BaseException:
                with contextlib.suppress(Exception):
                    await fresh.stop()
                raise
            self._current, self._given_up = fresh, None
            PRODUCER_RENEWALS.labels(self._client_id).inc()
            log.warning("kafka producer gave up, replaced by a new one", error=repr(exc))
            closing = asyncio.create_task(self._close(dead))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    @staticmethod
    async def _close(dead: AIOKafkaProducer) -> None:
        try:
            await dead.stop()
        except Exception as exc:
            log.warning("a replaced kafka producer failed to close", error=repr(exc))


def create_producer(bootstrap_servers: str, **overrides: Any) -> Producer:
    """A producer that never loses an acknowledged record: acks=all with idempotence."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": 2,
        "request_timeout_ms": 30_000,
        "retry_backoff_ms": 200,
    }
    options.update(overrides)
    return Producer(**options)
