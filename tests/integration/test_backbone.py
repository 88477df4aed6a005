"""The event backbone against real Kafka and PostgreSQL, with producer and consumer as processes."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.inbox import InboxPruner
from clientele_shared.events.outbox import NOTIFY_CHANNEL, Outbox, OutboxRelay
from clientele_shared.events.producer import create_producer
from clientele_testkit import probe
from clientele_testkit.databases import drop_database, refuse_connections
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import wait_for
from sqlalchemy import func, insert, select, text

pytestmark = pytest.mark.integration
PROBE = Path(probe.__file__)


class Probe:
    """A fresh topic and schema, and the probe processes working on them."""

    def __init__(
        self, infra: Infrastructure, tmp_path: Path, *, own_database: bool = False
    ) -> None:
        run = uuid.uuid4().hex[:10]
        self.infra = infra
        self.topic = f"test.probe.{run}"
        self.schema = f"probe_{run}"
        self.database = f"clientele_test_probe_{run}" if own_database else None
        self.database_url = infra.database_url(self.database or "clientele_test")
        self.metadata, self.outbox, self.inbox, self.effects = probe.tables(self.schema)
        self.logs = tmp_path
        self.processes: list[subprocess.Popen[bytes]] = []
        asyncio.run(self._setup())

    async def _admin(self, *statements: str) -> None:
        """Run statements on the server's maintenance database (outside any probe database)."""
        conn = await asyncpg.connect(self.infra.database_url("postgres"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    def refuse_connections(self, refuse: bool) -> None:
        """Make the probe database refuse every connection and end the open ones, or accept
        them again."""
        assert self.database is not None, "only a probe with its own database"
        asyncio.run(refuse_connections(self.infra.postgres_url, self.database, refuse))

    async def _setup(self) -> None:
        if self.database is not None:
            await self._admin(f'CREATE DATABASE "{self.database}"')
        engine = create_engine(self.database_url)
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            await conn.run_sync(self.metadata.create_all)
        await engine.dispose()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.infra.kafka_bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(self.topic, 3, 1), NewTopic(f"{self.topic}.dlt", 1, 1)]
            )
        finally:
            await admin.close()

    def start(self, mode: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{mode}-{len(self.processes)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(PROBE), mode],
            env={
                **os.environ,
                **self.infra.as_env(),
                "PROBE_TOPIC": self.topic,
                "PROBE_SCHEMA": self.schema,
                "PROBE_DATABASE_URL": self.database_url,
                **env,
            },
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        """Kill the processes still running and print their logs (shown when a test fails)."""
        for process in self.processes:
            if process.poll() is None:
                self.kill(process)
        for log in sorted(self.logs.glob("*.log")):
            print(f"--- {log.name}")
            print("\n".join(_runs_of_lines(log.read_text(errors="replace").splitlines())[-60:]))
        if self.database is not None:
            asyncio.run(drop_database(self.infra.postgres_url, self.database))

    def query(self, stmt: object) -> int:
        async def run() -> int:
            engine = create_engine(self.database_url, pool_size=1)
            async with engine.connect() as conn:
                value = await conn.scalar(stmt)  # type: ignore[call-overload]
            await engine.dispose()
            return int(value or 0)

        return asyncio.run(run())

    def applied(self) -> tuple[int, int]:
        """(effect rows, distinct events among them)."""
        count = self.query(select(func.count()).select_from(self.effects))
        distinct = self.query(select(func.count(func.distinct(self.effects.c.event_id))))
        return count, distinct

    def backlog(self) -> int:
        return self.query(select(func.count()).select_from(self.outbox))

    def stage(self, payloads: list[probe.Happened], *, aggregate_id: str | None = None) -> None:
        """Write events straight into the outbox (as a service's transaction would)."""

        async def run() -> None:
            engine = create_engine(self.database_url)
            writer = Outbox(probe.PRODUCER, probe.registry(self.topic), self.outbox)
            async with sessionmaker(engine)() as session, session.begin():
                for payload in payloads:
                    await writer.publish(
                        session,
                        probe.EVENT,
                        payload,
                        aggregate_id=aggregate_id or str(uuid.uuid4()),
                    )
            await engine.dispose()

        asyncio.run(run())

    def wait_applied(self, expected: int, timeout: float = 120) -> None:
        wait_for(lambda: self.applied()[1] >= expected, timeout, f"{expected} applied events")


def _runs_of_lines(lines: list[str]) -> list[str]:
    """Consecutive lines that differ only in numbers (times, partitions) as one: its first
    line, how many and the last one's time (a probe repeats a warning while Kafka is away)."""
    runs: list[tuple[str, str, int, str]] = []
    for line in lines:
        shape = re.sub(r"\d+", "#", line)
        if runs and runs[-1][0] == shape:
            runs[-1] = (shape, runs[-1][1], runs[-1][2] + 1, line[:23])
        else:
            runs.append((shape, line, 1, line[:23]))
    return [first if n == 1 else f"{first}  [x{n}, last at {last}]" for _, first, n, last in runs]


@pytest.fixture
def probes(infra: Infrastructure, tmp_path: Path) -> Iterator[Probe]:
    one = Probe(infra, tmp_path)
    yield one
    one.stop_all()


def test_relay_killed_mid_batch_delivers_every_event_once(probes: Probe) -> None:
    total = 3000
    probes.stage([probe.Happened(seq=seq) for seq in range(total)])
    probes.start("consume")
    relay = probes.start("relay", PROBE_RELAY_BATCH="100")
    wait_for(lambda: probes.backlog() < total, 60, "the relay to publish a first batch")
    probes.kill(relay)
    assert probes.backlog() > 0, "the relay finished before it could be killed mid-way"

    probes.start("relay", PROBE_RELAY_BATCH="100")
    probes.wait_applied(total)
    wait_for(lambda: probes.backlog() == 0, 30, "an empty outbox")
    assert probes.applied() == (total, total)


def test_consumer_killed_mid_processing_loses_and_repeats_nothing(probes: Probe) -> None:
    total = 600
    probes.stage([probe.Happened(seq=seq) for seq in range(total)])
    consumer = probes.start("consume", PROBE_DELAY="0.02")
    probes.start("relay")
    wait_for(lambda: probes.applied()[1] >= 100, 120, "the consumer to apply a first part")
    probes.kill(consumer)
    assert probes.applied()[1] < total, "the consumer finished before it could be killed"

    probes.start("consume")
    probes.wait_applied(total)
    assert probes.applied() == (total, total)


def test_broker_restart_while_producing_loses_nothing(probes: Probe, infra: Infrastructure) -> None:
    if infra.local_scripts is None:
        pytest.skip("the broker is not ours to restart (given by address or a container)")
    total = 1500
    probes.start("consume")
    probes.start("produce", PROBE_COUNT=str(total), PROBE_RATE="100")
    wait_for(lambda: probes.applied()[1] >= 200, 120, "events flowing before the restart")
    kafka = infra.local_scripts.with_name("kafka.sh")
    subprocess.run([str(kafka), "restart"], check=True)
    probes.wait_applied(total, timeout=240)
    assert probes.applied() == (total, total)


def test_an_event_that_kills_the_consumer_is_dead_lettered_after_its_attempts(
    probes: Probe, infra: Infrastructure
) -> None:
    key = str(uuid.uuid4())  # one partition, in order
    probes.stage([probe.Happened(seq=seq, crash=seq == 3) for seq in range(10)], aggregate_id=key)
    probes.start("relay")
    exits = []
    for _ in range(8):
        consumer = probes.start("consume")
        wait_for(
            lambda: consumer.poll() is not None or probes.applied()[1] == 9,  # noqa: B023
            120,
            "the consumer to die or to apply everything but the killer",
        )
        if consumer.poll() is None:
            break
        exits.append(consumer.returncode)
    # max_attempts=3: the first death in a batch, then 3 deaths applying the event alone
    assert exits == [3, 3, 3, 3]
    assert probes.applied() == (9, 9)
    assert probes.query(select(func.count()).where(probes.effects.c.seq == 3)) == 0

    letters = asyncio.run(_dead_letters(infra, probes.topic, expected=1))
    assert [letter["dlt.attempts"] for letter in letters] == ["3"]
    assert "stopped 3 times" in letters[0]["dlt.error"]
    marks = probes.query(text(f'SELECT count(*) FROM "{probes.schema}".inbox_attempts'))
    assert marks == 0


async def _dead_letters(infra: Infrastructure, topic: str, expected: int) -> list[dict[str, str]]:
    """The headers of up to `expected` records on the topic's dead-letter topic."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=infra.kafka_bootstrap_servers, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        partition = TopicPartition(f"{topic}.dlt", 0)
        consumer.assign([partition])
        records = []
        while len(records) < expected:
            batch = await consumer.getmany(partition, timeout_ms=10_000)
            if not batch:
                break
            records.extend(batch[partition])
        return [{k: v.decode() for k, v in r.headers} for r in records]
    finally:
        await consumer.stop()


def test_poison_message_is_dead_lettered_and_the_partition_moves_on(
    probes: Probe, infra: Infrastructure
) -> None:
    key = str(uuid.uuid4())  # one key: every event on the same partition, in order
    probes.stage([probe.Happened(seq=seq, poison=seq == 3) for seq in range(10)], aggregate_id=key)

    async def send_garbage() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers)
        await producer.start()
        try:
            await producer.send_and_wait(probes.topic, b"{not json", key=key.encode())
        finally:
            await producer.stop()

    asyncio.run(send_garbage())
    probes.start("consume")
    probes.start("relay")
    probes.wait_applied(9)
    seqs = probes.query(select(func.count()).where(probes.effects.c.seq == 3))
    assert seqs == 0
    assert probes.applied() == (9, 9)

    letters = asyncio.run(_dead_letters(infra, probes.topic, expected=2))
    assert sorted(letter["dlt.attempts"] for letter in letters) == ["0", "3"]
    poison = next(letter for letter in letters if letter["dlt.attempts"] == "3")
    assert "poison event 3" in poison["dlt.error"]
    assert poison["dlt.consumer"] == "probe-consumer.effects"
    invalid = next(letter for letter in letters if letter["dlt.attempts"] == "0")
    assert "validation error" in invalid["dlt.error"].lower()


async def _dead_letter_count(infra: Infrastructure, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap_servers)
    await consumer.start()
    try:
        partition = TopicPartition(f"{topic}.dlt", 0)
        return int((await consumer.end_offsets([partition]))[partition])
    finally:
        await consumer.stop()


@pytest.fixture
def own_database_probes(infra: Infrastructure, tmp_path: Path) -> Iterator[Probe]:
    one = Probe(infra, tmp_path, own_database=True)
    yield one
    one.stop_all()


def test_a_database_refusing_connections_is_waited_out_and_nothing_is_dead_lettered(
    own_database_probes: Probe, infra: Infrastructure
) -> None:
    probes = own_database_probes
    total = 600
    probes.stage([probe.Happened(seq=seq) for seq in range(total)])
    probes.start("relay")
    wait_for(lambda: probes.backlog() == 0, 60, "every event published")
    # Small batches: most of the events arrive after the consumer's start-up guard.
    probes.start("consume", PROBE_BATCH_SIZE="20", PROBE_DELAY="0.005")
    wait_for(lambda: probes.applied()[1] >= 100, 120, "the consumer to apply a first part")
    probes.refuse_connections(True)
    try:
        time.sleep(8)  # "too many connections for database" for 8 s, after a terminate
    finally:
        probes.refuse_connections(False)
    assert probes.applied()[1] < total, "the consumer finished before the outage"

    probes.wait_applied(total, timeout=60)
    assert probes.applied() == (total, total)
    assert asyncio.run(_dead_letter_count(infra, probes.topic)) == 0


def test_handler_bugs_are_dead_lettered_after_their_attempts_not_redelivered_forever(
    probes: Probe, infra: Infrastructure
) -> None:
    key = str(uuid.uuid4())  # one partition, in order
    faults: dict[int, Literal["bind", "interface", "file"]] = {
        2: "bind",
        4: "interface",
        6: "file",
    }
    probes.stage(
        [probe.Happened(seq=seq, fault=faults.get(seq)) for seq in range(10)], aggregate_id=key
    )
    probes.start("consume")
    probes.start("relay")
    probes.wait_applied(7, timeout=60)
    assert probes.applied() == (7, 7)

    letters = asyncio.run(_dead_letters(infra, probes.topic, expected=3))
    assert [letter["dlt.attempts"] for letter in letters] == ["3", "3", "3"]
    errors = [letter["dlt.error"] for letter in letters]
    assert "DataError" in errors[0] or "invalid input" in errors[0]
    assert "InterfaceError" in errors[1]
    assert "FileNotFoundError" in errors[2]


def test_the_inbox_pruner_deletes_old_rows_in_batches_and_keeps_recent_ones(
    probes: Probe,
) -> None:
    now = dt.datetime.now(dt.UTC)

    def rows(count: int, age: dt.timedelta) -> list[dict[str, object]]:
        return [
            {
                "consumer": "probe-consumer.effects",
                "event_id": uuid.uuid4(),
                "event_type": probe.EVENT,
                "processed_at": now - age,
            }
            for _ in range(count)
        ]

    async def run() -> tuple[int, int]:
        engine = create_engine(probes.database_url)
        async with engine.begin() as conn:
            await conn.execute(insert(probes.inbox), rows(12_001, dt.timedelta(days=8)))
            await conn.execute(insert(probes.inbox), rows(150, dt.timedelta(days=6)))
        pruner = InboxPruner(
            "probe-consumer", engine, probes.inbox, retention=dt.timedelta(days=7), pause=0
        )
        pruned = await pruner.prune_once()
        async with engine.connect() as conn:
            left = await conn.scalar(select(func.count()).select_from(probes.inbox))
        await engine.dispose()
        return pruned, int(left or 0)

    assert asyncio.run(run()) == (12_001, 150)


def test_a_commit_wakes_the_relay_of_its_process_without_notify(
    probes: Probe, infra: Infrastructure
) -> None:
    async def run() -> tuple[list[str], list[str], float]:
        engine = create_engine(probes.database_url)
        producer = create_producer(infra.kafka_bootstrap_servers)
        await producer.start()
        # A poll far beyond the test: only the wake-up can make the relay publish in time.
        relay = OutboxRelay(probe.PRODUCER, engine, probes.outbox, producer, poll_interval=60)
        woken: list[str] = []

        def wake() -> None:
            woken.append("woken")
            relay.wake()

        writer = Outbox(probe.PRODUCER, probe.registry(probes.topic), probes.outbox, wake=wake)
        heard: list[str] = []
        listener = await asyncpg.connect(probes.database_url)
        await listener.add_listener(NOTIFY_CHANNEL, lambda *_: heard.append("notify"))
        relaying = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(0.5)  # the relay's first pass over an empty outbox
            sessions = sessionmaker(engine)
            async with sessions() as session, session.begin():
                await writer.publish(session, probe.EVENT, probe.Happened(seq=1), aggregate_id="a")
                assert woken == [], "woken before the commit"
            async with sessions() as session, session.begin():  # rolled back: no wake-up
                await writer.publish(session, probe.EVENT, probe.Happened(seq=2), aggregate_id="b")
                await session.rollback()
            started = time.monotonic()
            while await relay.backlog():  # noqa: ASYNC110 (polls the database)
                await asyncio.sleep(0.01)
            published_after = time.monotonic() - started
            await asyncio.sleep(0.2)
        finally:
            relaying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relaying
            await relay.close()
            await listener.close()
            await producer.stop()
            await engine.dispose()
        return woken, heard, published_after

    woken, heard, published_after = asyncio.run(run())
    assert woken == ["woken"]
    assert heard == []  # no NOTIFY: no server-wide lock at the writer's commit
    assert published_after < 1.0
