"""Two consumers of one entity's rows (its state topic and its change topic) in one database:
their batches lock the rows in one order, so neither deadlocks nor falls back (ADR 59)."""

from __future__ import annotations

import asyncio
import types
import uuid
from collections.abc import Awaitable

import pytest
from aiokafka import ConsumerRecord
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.inbox import EventConsumer, Handler, per_event
from clientele_shared.events.producer import create_producer
from clientele_shared.events.registry import EventSpec, Registry, Topic
from clientele_shared.events.state import ReadModel
from clientele_shared.events.tables import inbox_attempts_table, inbox_table
from clientele_shared.observability import HANDLER_LATENCY
from clientele_testkit.infra import Infrastructure
from faststream.kafka import KafkaBroker
from pydantic import BaseModel
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession

pytestmark = pytest.mark.integration
SERVICE = "lock-order"


class RowState(BaseModel):
    key: uuid.UUID
    version: int
    revision: int
    value: str


def _record(topic: str, offset: int, event: str, state: RowState) -> ConsumerRecord[bytes, bytes]:
    envelope = Envelope(
        type=event,
        schema_version=1,
        producer="directory",
        correlation_id=f"lock-order-{offset}",
        aggregate_id=str(state.key),
        payload=state.model_dump(mode="json"),
    )
    value, key = envelope.to_bytes(), str(state.key).encode()
    return ConsumerRecord(
        topic, 0, offset, 0, 0, key, value, None, len(key), len(value), headers=[]
    )


def test_batches_of_the_same_rows_in_opposite_orders_neither_deadlock_nor_fall_back(
    infra: Infrastructure,
) -> None:
    run = uuid.uuid4().hex[:10]
    schema = f"lock_order_{run}"
    changes, states = f"test.lock-order.{run}", f"test.lock-order.{run}.state"
    metadata = MetaData(schema=schema)
    inbox = inbox_table(metadata)
    inbox_attempts_table(metadata)
    rows = Table(
        "rows",
        metadata,
        Column("key", Uuid, primary_key=True),
        Column("version", Integer, nullable=False),
        Column("state_revision", BigInteger, nullable=False),
        Column("value", String, nullable=False),
    )
    model = ReadModel(
        rows,
        lambda p: {
            "key": p.key,
            "version": p.version,
            "state_revision": p.revision,
            "value": p.value,
        },
        key="key",
    )
    registry = Registry.of(
        [
            Topic(changes, "directory", frozenset({SERVICE})),
            Topic(states, "directory", frozenset({SERVICE})),
        ],
        [
            EventSpec("lockorder.changed", 1, changes, RowState),
            EventSpec("lockorder.state", 1, states, RowState),
        ],
    )
    low, high = sorted([uuid.uuid4(), uuid.uuid4()], key=str)
    # The change consumer's batch tells low then high, the state consumer's high then low;
    # each batch has the newer version of its first row.
    change_batch = (
        _record(
            changes, 0, "lockorder.changed", RowState(key=low, version=2, revision=1, value="c")
        ),
        _record(
            changes, 1, "lockorder.changed", RowState(key=high, version=1, revision=1, value="c")
        ),
    )
    state_batch = (
        _record(states, 0, "lockorder.state", RowState(key=high, version=2, revision=1, value="s")),
        _record(states, 1, "lockorder.state", RowState(key=low, version=1, revision=1, value="s")),
    )

    async def scenario() -> tuple[dict[uuid.UUID, tuple[int, str]], int]:
        engine = create_engine(infra.database_url("clientele_test"))
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(metadata.create_all)
        consumer = EventConsumer(
            SERVICE,
            KafkaBroker(infra.kafka_bootstrap_servers, logger=None),
            sessionmaker(engine),
            inbox,
            registry,
            create_producer(infra.kafka_bootstrap_servers),  # never started: nothing dead-letters
        )
        first_done = {changes: asyncio.Event(), states: asyncio.Event()}

        async def other_waits_for_a_lock() -> bool:
            async with engine.connect() as conn:
                waiting = await conn.scalar(
                    text(
                        "SELECT count(*) FROM pg_stat_activity "
                        "WHERE wait_event_type = 'Lock' AND query LIKE :query"
                    ),
                    {"query": f"%{schema}%"},
                )
            return bool(waiting)

        def handler(topic: str, other: str) -> Handler:
            """Apply a row; after the batch's first, hold its lock until the other batch has
            its own first row or waits for this one's (so the batches always overlap)."""
            applied = 0

            async def apply(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
                nonlocal applied
                await model.apply(session, [payload])
                applied += 1
                if applied == 1:
                    first_done[topic].set()
                    # polls the database too, not only the other batch's flag
                    while not first_done[other].is_set() and not await other_waits_for_a_lock():  # noqa: ASYNC110
                        await asyncio.sleep(0.01)

            return apply

        def batch(
            topic: str, other: str, records: tuple[ConsumerRecord[bytes, bytes], ...]
        ) -> Awaitable[None]:
            return consumer._process_batch(  # one batch, as the subscriber hands it
                topic,
                f"{SERVICE}.{topic}",
                per_event(handler(topic, other)),
                records,
                types.SimpleNamespace(),
            )

        try:
            await asyncio.wait_for(
                asyncio.gather(
                    batch(changes, states, change_batch), batch(states, changes, state_batch)
                ),
                timeout=120,  # a hang fails the test instead of the session
            )
            async with engine.connect() as conn:
                found = {
                    row.key: (row.version, row.value) for row in await conn.execute(select(rows))
                }
                claimed = int(await conn.scalar(select(func.count()).select_from(inbox)) or 0)
        finally:
            async with engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await engine.dispose()
        return found, claimed

    found, claimed = asyncio.run(scenario())

    for topic in (changes, states):
        assert _count(f"{SERVICE}.{topic}", topic, "one_by_one") == 0, "a batch fell back"
        assert _count(f"{SERVICE}.{topic}", topic, "applied") == 1
    assert found == {low: (2, "c"), high: (2, "s")}  # the newest version of each row won
    assert claimed == 4


def _count(consumer: str, topic: str, outcome: str) -> float:
    """How many batches of the consumer ended with ``outcome`` (the handler-latency count)."""
    histogram = HANDLER_LATENCY.labels(SERVICE, consumer, topic, outcome)
    return next(
        sample.value
        for metric in histogram.collect()
        for sample in metric.samples
        if sample.name.endswith("_count")
    )
