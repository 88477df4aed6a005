"""State topics (ADR 18): full snapshots of an owner's records, and read models built from them.

Owner side: a :class:`StateSource` tells the :class:`~clientele_shared.events.outbox.Outbox`
which records a change event touches and how to read their snapshots; the outbox stages a
state record for each of them in the transaction that stages the change event, so every change
of a record is followed on its state topic by its full state.

Consumer side: a :class:`ReadModel` applies snapshots to a table with one upsert guarded by the
snapshot's order (``version``, then ``revision``): an older snapshot never overwrites a newer
one, so state records may be applied in any order relative to change events, and again.
:class:`StateLoader` reads a whole state topic (for a rebuild), :func:`subscribe_state` follows
it through the inbox consumer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from sqlalchemy import Column, MetaData, Table, delete, func, select, text, tuple_
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.registry import EventSpec, Registry
from clientele_shared.observability import get_logger

if TYPE_CHECKING:
    from clientele_shared.events.inbox import EventConsumer

log = get_logger(__name__)

STATE_REVISIONS = "state_revisions"
"""The owner's sequence that orders the snapshots of one record (see :func:`next_revision`)."""

STATE_GAPS = Counter(
    "clientele_state_gaps_total",
    "Change events about a record the read model does not know yet (its state record fills it in)",
    ["service", "consumer", "topic"],
)


def create_state_revisions(bind: Connection) -> None:
    """Create the owner's revision sequence (in a migration)."""
    DbSequence(STATE_REVISIONS).create(bind)


def drop_state_revisions(bind: Connection) -> None:
    DbSequence(STATE_REVISIONS).drop(bind)


def next_revision() -> Any:
    """SQL: the next revision; read it after locking the record, so that snapshots of one record
    are numbered in the order their transactions commit."""
    return func.nextval(STATE_REVISIONS)


Snapshots = Callable[[AsyncSession, Sequence[str]], Awaitable[Sequence[Envelope]]]
"""Reads the records with these ids in the caller's transaction (locking them) and returns their
state envelopes; an id that no longer exists has none."""


@dataclass(frozen=True)
class StateSource:
    """One entity's state topic as the owner's outbox feeds it."""

    topic: str
    """The change-event topic whose events change the entity."""
    keys: Callable[[Envelope], Iterable[str]]
    """The ids of the records a change event changes (none: an event about something else)."""
    snapshots: Snapshots


def gap(service: str, consumer: str, topic: str, envelope: Envelope) -> None:
    """Record a change event about a record the read model has not seen (metric and log)."""
    STATE_GAPS.labels(service, consumer, topic).inc()
    log.warning(
        "a change event about a record the read model does not know; its state record will "
        "fill it in",
        consumer=consumer,
        topic=topic,
        event_type=envelope.type,
        aggregate_id=envelope.aggregate_id,
    )


@dataclass(frozen=True)
class ReadModel:
    """A table kept from a state topic: one row per record, replaced by newer snapshots.

    ``columns`` maps a snapshot (the typed payload) to the row's column values; the table has
    the key column ``key`` and the order columns ``version`` and ``revision`` (names given).
    ``sticky`` columns keep a value once they have one (a snapshot does not clear them: e.g. a
    merge alias the consumer has re-pointed since).
    """

    table: Table
    columns: Callable[[Any], dict[str, Any]]
    key: str
    version: str = "version"
    revision: str = "state_revision"
    sticky: frozenset[str] = frozenset()

    def rows(self, payloads: Iterable[BaseModel]) -> list[dict[str, Any]]:
        """Column values of snapshots, the newest per key."""
        newest: dict[Any, dict[str, Any]] = {}
        for payload in payloads:
            row = self.columns(payload)
            known = newest.get(row[self.key])
            if known is None or self._order(row) > self._order(known):
                newest[row[self.key]] = row
        return list(newest.values())

    def _order(self, row: Mapping[str, Any]) -> tuple[int, int]:
        return row[self.version], row[self.revision]

    async def apply(
        self, session: AsyncSession, payloads: Iterable[BaseModel], *, into: Table | None = None
    ) -> None:
        """Upsert the snapshots that are newer than the rows (into ``into``, a copy of the
        table, when given): one statement, its rows sent in pages (executemany)."""
        rows = self.rows(payloads)
        if not rows:
            return
        table = self.table if into is None else into
        stmt = insert(table)
        excluded = stmt.excluded
        names = [name for name in rows[0] if name != self.key]
        newer = tuple_(excluded[self.version], excluded[self.revision]) > tuple_(
            table.c[self.version], table.c[self.revision]
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c[self.key]],
                set_={
                    name: func.coalesce(table.c[name], excluded[name])
                    if name in self.sticky
                    else excluded[name]
                    for name in names
                },
                where=newer,
            ),
            rows,
        )

    async def bulk(
        self, session: AsyncSession, payloads: Iterable[BaseModel], *, into: Table
    ) -> None:
        """``apply`` for a large batch (a rebuild): COPY into a temporary table, then one
        guarded upsert from it."""
        rows = self.rows(payloads)
        if not rows:
            return
        names = list(rows[0])
        staging = f"{into.name}_staging"
        target = f'"{into.schema}"."{into.name}"' if into.schema else f'"{into.name}"'
        # through the session: it begins the transaction the COPY below then runs in
        await session.execute(
            text(
                f'CREATE TEMPORARY TABLE IF NOT EXISTS "{staging}" '
                f"(LIKE {target} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
        )
        connection = await session.connection()
        driver = (await connection.get_raw_connection()).driver_connection
        assert driver is not None, "an asyncpg connection"
        await driver.copy_records_to_table(
            staging, records=[tuple(row[name] for name in names) for row in rows], columns=names
        )
        staged = Table(staging, MetaData(), *(Column(c.name, c.type) for c in into.columns))
        stmt = insert(into).from_select(names, select(*(staged.c[name] for name in names)))
        excluded = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[into.c[self.key]],
                set_={
                    name: func.coalesce(into.c[name], excluded[name])
                    if name in self.sticky
                    else excluded[name]
                    for name in names
                    if name != self.key
                },
                where=tuple_(excluded[self.version], excluded[self.revision])
                > tuple_(into.c[self.version], into.c[self.revision]),
            )
        )

    async def remove(
        self, session: AsyncSession, keys: Iterable[Any], *, into: Table | None = None
    ) -> None:
        """Apply tombstones: the records were purged by their owner."""
        table = self.table if into is None else into
        wanted = list(keys)
        if wanted:
            await session.execute(delete(table).where(table.c[self.key].in_(wanted)))


@dataclass
class Progress:
    """How far a load of a state topic got."""

    records: int = 0
    tombstones: int = 0
    total: int = 0
    started: float = 0.0

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started


class StateLoader:
    """Reads a state topic from its beginning up to its end as of the start, in batches.

    No consumer group, nothing committed; for building a read model aside (a rebuild). Events
    that arrive meanwhile are applied by the service's regular subscription, which the version
    guard makes harmless to overlap with. Records are decoded in one pass into the registered
    state types of the topic (``registered_as``, default ``topic``; five times faster than an
    envelope and then its payload), any other record through the registry as usual.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        registry: Registry,
        *,
        batch_size: int = 5000,
        registered_as: str | None = None,
        **client_options: Any,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.registry = registry
        self.batch_size = batch_size
        self.client_options = client_options
        specs = [
            spec for spec in registry.events.values() if spec.topic == (registered_as or topic)
        ]
        self._records: list[tuple[EventSpec, type[BaseModel]]] = [
            (
                spec,
                create_model(
                    f"{spec.payload.__name__}Record",
                    __config__=ConfigDict(extra="ignore"),
                    type=(str, ...),
                    schema_version=(int, ...),
                    payload=(spec.payload, ...),
                ),
            )
            for spec in sorted(specs, key=lambda spec: -spec.version)
        ]

    def decode(self, value: bytes) -> BaseModel:
        """The typed payload of a state record."""
        for spec, record_type in self._records:
            try:
                record = record_type.model_validate_json(value)
            except ValidationError:
                continue
            if (getattr(record, "type", None), getattr(record, "schema_version", None)) == (
                spec.name,
                spec.version,
            ):
                payload: BaseModel = getattr(record, "payload")  # noqa: B009 (a created model)
                return payload
        return self.registry.validate(Envelope.from_bytes(value))

    async def load(
        self,
        apply: Callable[[list[BaseModel], list[str]], Awaitable[None]],
        *,
        progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Call ``apply(snapshots, purged_keys)`` per batch; return the totals."""
        consumer = AIOKafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            group_id=None,  # every partition, no group, nothing committed
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # from the beginning (a seek could race the reset)
            max_poll_records=self.batch_size,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            **self.client_options,
        )
        await consumer.start()
        done = Progress(started=time.monotonic())
        writing: asyncio.Task[None] | None = None
        try:
            deadline = time.monotonic() + 30
            while not consumer.assignment():
                if time.monotonic() > deadline:
                    raise LookupError(f"no partitions of {self.topic} (does it exist?)")
                await asyncio.sleep(0.1)
            partitions = sorted(consumer.assignment())
            start = await consumer.beginning_offsets(partitions)
            end = await consumer.end_offsets(partitions)
            done.total = sum(end[tp] - start[tp] for tp in partitions)
            remaining = {tp for tp in partitions if end[tp] > start[tp]}
            # one batch is written while the next is fetched and decoded

            async def write(snapshots: list[BaseModel], purged: list[str]) -> None:
                await apply(snapshots, purged)
                done.records += len(snapshots)
                done.tombstones += len(purged)
                if progress is not None:
                    progress(done)

            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                snapshots: list[BaseModel] = []
                purged: list[str] = []
                for tp, records in batch.items():
                    for record in records:
                        if record.offset >= end[tp]:
                            continue
                        if record.value is None:
                            purged.append((record.key or b"").decode())
                        else:
                            snapshots.append(self.decode(record.value))
                for tp in list(remaining):
                    if await consumer.position(tp) >= end[tp]:
                        remaining.discard(tp)
                if snapshots or purged:
                    if writing is not None:
                        await writing
                    writing = asyncio.create_task(write(snapshots, purged))
            if writing is not None:
                await writing
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
            await consumer.stop()
        return done


def subscribe_state(consumer: EventConsumer, topic: str, name: str, model: ReadModel) -> None:
    """Follow a state topic into a read model through the inbox consumer (group ``name``)."""

    async def apply(session: AsyncSession, _envelope: Envelope, payload: BaseModel) -> None:
        await model.apply(session, [payload])

    consumer.subscribe(topic, name, apply)
