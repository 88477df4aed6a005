"""The pieces of the real stack a figure works on: its own topic, schema and probe processes."""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from types import TracebackType

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.outbox import Outbox
from clientele_testkit import probe
from sqlalchemy import text

from bench.processes import Proc
from bench.registry import Context

BENCH_DATABASE = "clientele_bench"
PROBE_SCRIPT = Path(probe.__file__)


async def ensure_database(postgres_url: str, name: str = BENCH_DATABASE) -> None:
    conn = await asyncpg.connect(f"{postgres_url.rstrip('/')}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def new_id() -> str:
    return uuid.uuid4().hex[:10]


class Topics:
    """Topics created for one run and deleted after it."""

    def __init__(self, bootstrap: str, topics: dict[str, int]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics

    async def __aenter__(self) -> Topics:
        if not self.topics:
            return self
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            await admin.create_topics(
                [NewTopic(name, partitions, 1) for name, partitions in self.topics.items()]
            )
        finally:
            await admin.close()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.topics:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await admin.start()
            await admin.delete_topics(list(self.topics))
        except Exception as error:  # leaving a topic behind is not worth failing the run
            print(f"bench: could not delete topics {list(self.topics)}: {error!r}", file=sys.stderr)
        finally:
            await admin.close()


async def wait_group_stable(bootstrap: str, group: str, *, within: float) -> None:
    """Wait until consumer group `group` has finished joining (state Stable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        async with asyncio.timeout(within):
            while True:
                for response in await admin.describe_consumer_groups([group]):
                    for described in response.groups:
                        # (error_code, group_id, state, protocol_type, protocol, members, ...)
                        if described[2] == "Stable" and described[5]:
                            return
                await asyncio.sleep(0.1)
    finally:
        await admin.close()


class ProbeStack:
    """A fresh schema and topic for the probe processes of `clientele_testkit.probe`."""

    def __init__(self, ctx: Context, *, kafka: bool = True) -> None:
        run = new_id()
        self.ctx = ctx
        self.topic = f"bench.probe.{run}"
        self.schema = f"bench_probe_{run}"
        self.subscription = f"bench{run}"
        self.group = f"{probe.CONSUMER}.{self.subscription}"
        self.metadata, self.outbox, self.inbox, self.effects = probe.tables(self.schema)
        self.engine = create_engine(ctx.database_url, pool_size=2)
        self._topics = Topics(
            ctx.infra.kafka_bootstrap_servers,
            {self.topic: 3, f"{self.topic}.dlt": 1} if kafka else {},
        )

    async def __aenter__(self) -> ProbeStack:
        async with self.engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
            await conn.run_sync(self.metadata.create_all)
        await self._topics.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.ctx.processes.stop_all()  # nothing may still use the schema
        try:
            async with self.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            await self.engine.dispose()
            await self._topics.__aexit__(exc_type, exc, tb)

    async def start(self, mode: str, **env: str) -> Proc:
        return await self.ctx.processes.start(
            f"probe-{mode}",
            [sys.executable, str(PROBE_SCRIPT), mode],
            env={
                **os.environ,
                **self.ctx.infra.as_env(),
                "PROBE_TOPIC": self.topic,
                "PROBE_SCHEMA": self.schema,
                "PROBE_DATABASE_URL": self.ctx.database_url,
                "PROBE_SUBSCRIPTION": self.subscription,
                **env,
            },
        )

    async def start_consumer(self, *, within: float = 60) -> Proc:
        """Start the consuming probe and wait until its group has its partitions."""
        consumer = await self.start("consume")
        await consumer.wait_line("ready", within=within)
        await wait_group_stable(self.ctx.infra.kafka_bootstrap_servers, self.group, within=within)
        return consumer

    async def stage(self, count: int, chunk: int = 2000) -> float:
        """Write `count` events into the outbox as services do (Outbox.publish); return seconds."""
        started = time.perf_counter()
        writer = Outbox(probe.PRODUCER, probe.registry(self.topic), self.outbox)
        sessions = sessionmaker(self.engine)
        for first in range(0, count, chunk):
            async with sessions() as session, session.begin():
                for seq in range(first, min(count, first + chunk)):
                    await writer.publish(
                        session,
                        probe.EVENT,
                        probe.Happened(seq=seq),
                        aggregate_id=str(uuid.uuid4()),
                    )
        return time.perf_counter() - started

    async def copy_outbox(self, source: ProbeStack) -> int:
        """Fill this outbox with the events staged in `source`'s, addressed to this topic."""
        columns = "event_id, key, event_type, value, headers"
        async with self.engine.begin() as conn:
            result = await conn.execute(
                text(
                    f'INSERT INTO "{self.schema}".outbox (topic, {columns})'
                    f' SELECT :topic, {columns} FROM "{source.schema}".outbox ORDER BY id'
                ),
                {"topic": self.topic},
            )
        return int(result.rowcount)

    async def scalar(self, sql: str) -> float:
        async with self.engine.connect() as conn:
            value = await conn.scalar(text(sql))
        return float(value or 0)

    async def applied(self) -> int:
        return int(await self.scalar(f'SELECT count(*) FROM "{self.schema}".effects'))

    async def wait_applied(self, count: int, *, until: float, poll: float = 0.25) -> int:
        """Wait until `count` effects exist or the wall clock reaches `until`; return how many
        exist. Fails early if a probe process died."""
        while (done := await self.applied()) < count and time.time() < until:
            self.ctx.processes.check()
            await asyncio.sleep(min(poll, max(0.0, until - time.time())))
        return done

    async def produced(self) -> int:
        """How many events were ever written to the outbox (its identity's last value)."""
        return int(
            await self.scalar(
                "SELECT coalesce(pg_sequence_last_value("
                f"pg_get_serial_sequence('\"{self.schema}\".outbox', 'id')), 0)"
            )
        )

    async def effects_summary(self) -> tuple[int, int, float]:
        """(effect rows, distinct events among them, last applied_at as epoch seconds)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT count(*), count(DISTINCT event_id),"
                        " extract(epoch FROM max(applied_at))::float8"
                        f' FROM "{self.schema}".effects'
                    )
                )
            ).one()
        return int(row[0]), int(row[1]), float(row[2] or 0)

    async def applied_below(self, seq: int) -> int:
        """Effects of the events numbered below `seq` (a probe producer numbers them 0, 1, ...)."""
        return int(
            await self.scalar(f'SELECT count(*) FROM "{self.schema}".effects WHERE seq < {seq:d}')
        )

    async def effect_times(self, below: int | None = None) -> list[tuple[float, float]]:
        """(occurred_at, applied_at) of every effect (of events numbered below `below`), as epoch
        seconds."""
        where = f" WHERE seq < {below:d}" if below is not None else ""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT extract(epoch FROM occurred_at)::float8,"
                    f' extract(epoch FROM applied_at)::float8 FROM "{self.schema}".effects{where}'
                )
            )
            return [(float(o), float(a)) for o, a in rows]
