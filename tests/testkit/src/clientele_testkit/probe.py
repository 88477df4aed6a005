"""A minimal producer/consumer pair built on the shared event backbone, run as real processes.

Modes (configuration through PROBE_* variables, see `Probe`):
  relay    run the outbox relay until killed
  produce  write PROBE_COUNT events through the outbox at PROBE_RATE per second, relaying them
  consume  apply events by appending a row per event to `effects` (no unique key: a second
           application of one event would show as a duplicate row), until killed; the consumer
           group is `probe-consumer.<PROBE_SUBSCRIPTION>` (default `effects`); a `poison` event
           raises, a `crash` event ends the process at once (exit status 3), an event with a
           `fault` fails as a buggy handler would (`bind`: a wrong bound value, `interface`: a
           statement without its parameter, `file`: a missing file); PROBE_BATCH_SIZE sets the
           consumer's batch size

Each effect row keeps the event's `occurred_at` and the database clock when it was applied
(`applied_at`, `clock_timestamp()`), so a benchmark can measure end-to-end latency.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Literal

from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.inbox import EventConsumer, RetryPolicy
from clientele_shared.events.outbox import Outbox, OutboxRelay
from clientele_shared.events.producer import create_producer
from clientele_shared.events.registry import EventSpec, Registry, Topic
from clientele_shared.events.tables import inbox_attempts_table, inbox_table, outbox_table
from faststream.kafka import KafkaBroker
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Uuid, func, insert, text
from sqlalchemy.ext.asyncio import AsyncSession

PRODUCER = "probe-producer"
CONSUMER = "probe-consumer"
EVENT = "probe.happened"


class Happened(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int
    poison: bool = False
    crash: bool = False
    fault: Literal["bind", "interface", "file"] | None = None


def registry(topic: str) -> Registry:
    return Registry.of(
        [Topic(topic, PRODUCER, frozenset({CONSUMER}))], [EventSpec(EVENT, 1, topic, Happened)]
    )


def tables(schema: str) -> tuple[MetaData, Table, Table, Table]:
    metadata = MetaData(schema=schema)
    effects = Table(
        "effects",
        metadata,
        Column("event_id", Uuid, nullable=False),
        Column("seq", Integer, nullable=False),
        Column("occurred_at", DateTime(timezone=True)),
        Column("applied_at", DateTime(timezone=True), server_default=func.clock_timestamp()),
    )
    inbox_attempts_table(metadata)
    return metadata, outbox_table(metadata), inbox_table(metadata), effects


async def main(mode: str) -> None:
    env = os.environ
    topic, schema = env["PROBE_TOPIC"], env["PROBE_SCHEMA"]
    reg = registry(topic)
    _, outbox, inbox, effects = tables(schema)
    engine = create_engine(env["PROBE_DATABASE_URL"])
    producer = create_producer(env["KAFKA_BOOTSTRAP_SERVERS"])
    await producer.start()
    delay = float(env.get("PROBE_DELAY", "0"))

    if mode == "consume":
        broker = KafkaBroker(env["KAFKA_BOOTSTRAP_SERVERS"], logger=None)

        async def apply(session: AsyncSession, event: Envelope, payload: BaseModel) -> None:
            assert isinstance(payload, Happened)
            if payload.poison:
                raise ValueError(f"poison event {payload.seq}")
            if payload.crash:
                os._exit(3)
            if payload.fault == "bind":  # asyncpg: DataError (SQLSTATE 22000)
                await session.execute(insert(effects).values(event_id=event.event_id, seq="x"))
            elif payload.fault == "interface":  # asyncpg: InterfaceError, connection intact
                await session.execute(text("SELECT $1::int"))
            elif payload.fault == "file":  # an OSError that is not the network's
                await asyncio.to_thread(Path(f"/nonexistent/{event.event_id}").read_bytes)
            await session.execute(
                insert(effects).values(
                    event_id=event.event_id, seq=payload.seq, occurred_at=event.occurred_at
                )
            )
            if delay:
                await asyncio.sleep(delay)

        consumer = EventConsumer(
            CONSUMER,
            broker,
            sessionmaker(engine),
            inbox,
            reg,
            producer,
            retry=RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=1.0),
            batch_size=int(env.get("PROBE_BATCH_SIZE", "500")),
        )
        consumer.subscribe(topic, env.get("PROBE_SUBSCRIPTION", "effects"), apply)
        await broker.start()
        print("ready", flush=True)
        await asyncio.Event().wait()

    relay = OutboxRelay(
        PRODUCER,
        engine,
        outbox,
        producer,
        batch_size=int(env.get("PROBE_RELAY_BATCH", "500")),
        poll_interval=0.2,
    )
    relaying = asyncio.create_task(relay.run())
    print("ready", flush=True)
    if mode == "produce":
        writer = Outbox(PRODUCER, reg, outbox, wake=relay.wake)  # as a service does
        sessions = sessionmaker(engine)
        count, rate = int(env["PROBE_COUNT"]), float(env.get("PROBE_RATE", "500"))
        started = time.monotonic()
        for seq in range(count):
            async with sessions() as session, session.begin():
                await writer.publish(
                    session, EVENT, Happened(seq=seq), aggregate_id=str(uuid.uuid4())
                )
            await asyncio.sleep(max(0.0, started + (seq + 1) / rate - time.monotonic()))
        while await relay.backlog():  # noqa: ASYNC110 (polls the database, not a local flag)
            await asyncio.sleep(0.1)
        print("produced", flush=True)
    await relaying


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    asyncio.run(main(sys.argv[1]))
