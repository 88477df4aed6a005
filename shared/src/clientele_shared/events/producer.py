"""The services' Kafka producer: idempotent with acks=all, renewed when aiokafka gives up on it.

aiokafka's idempotent producer can stop sending for good: after a broker restart, a batch
retried across the leader's return can come back ``OutOfOrderSequenceNumber``, and then every
later batch of that partition does too, since aiokafka keeps the producer id and its sequence
gap (the Java client bumps its epoch and goes on). Other answers end its sender task, after
which every ``send`` raises. A relay or a dead-letter step retrying with that producer would
retry forever. `Producer` wraps one and, once a send or an acknowledgement failed that way,
replaces it with a new one (a new producer id, sequences from zero) before the next send; the
error itself still reaches the caller, whose retry goes through the new producer. Nothing is
lost: the relay deletes its rows only after every send of the batch is acknowledged, and a
batch sent again is deduplicated by the consumers' inbox (ADR 76).
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
"""Errors after which aiokafka's producer sends nothing more."""

STOP_TIMEOUT = 5.0
"""How long a given-up producer may take to close (its sender has already stopped)."""


def gave_up(exc: BaseException) -> bool:
    """Whether an error from ``send`` means the producer will never send again: one of
    `FATAL`, or the bare ``KafkaError`` aiokafka raises when its sender task died otherwise."""
    return isinstance(exc, FATAL) or type(exc) is KafkaError


class Producer:
    """An ``AIOKafkaProducer`` replaced by a new one when it gives up (see the module)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._current = AIOKafkaProducer(**options)
        self._renewing = asyncio.Lock()
        self._given_up: tuple[AIOKafkaProducer, BaseException] | None = None

    @property
    def client(self) -> AIOKafkaClient:
        return self._current.client

    async def start(self) -> None:
        await self._current.start()

    async def stop(self) -> None:
        await self._current.stop()

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        """Queue a record; the future of its acknowledgement (as ``AIOKafkaProducer.send``)."""
        if self._given_up is not None:
            await self._renew(*self._given_up)
        current = self._current
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

    def _acknowledged(self, producer: AIOKafkaProducer, future: asyncio.Future[Any]) -> None:
        """Note a producer that failed an acknowledgement for good (renewed at the next send)."""
        if future.cancelled() or self._given_up is not None or producer is not self._current:
            return
        exc = future.exception()
        if exc is not None and gave_up(exc):
            self._given_up = (producer, exc)

    async def send_and_wait(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Any:
        return await (await self.send(topic, value, key, headers=headers))

    async def _renew(self, dead: AIOKafkaProducer, exc: BaseException) -> None:
        """Put a started new producer in place of ``dead`` (once, however many callers saw it
        give up). If Kafka is away the new one does not start and the next send tries again."""
        async with self._renewing:
            if self._current is not dead:
                return
            fresh = AIOKafkaProducer(**self._options)
            try:
                await fresh.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await fresh.stop()
                raise
            self._current, self._given_up = fresh, None
            PRODUCER_RENEWALS.labels(self._options.get("client_id") or "producer").inc()
            log.warning("kafka producer gave up, replaced by a new one", error=repr(exc))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(dead.stop(), STOP_TIMEOUT)


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
