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
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, ValidationError, create_model
from sqlalchemy import (
    BigInteger,
    Column,
    MetaData,
    Table,
    Uuid,
    delete,
    func,
    select,
    text,
    tuple_,
    values,
)
from sqlalchemy import Sequence as DbSequence
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_shared.bulk import Copy
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.feeds import DIRECTIONS_HEADER
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


async def next_revisions(session: AsyncSession, count: int) -> list[int]:
    """``count`` revisions in one statement, in increasing order, for records the caller holds
    locked (or created, invisible to others until its commit): see :func:`next_revision`."""
    if count <= 0:
        return []
    taken = await session.scalars(
        select(next_revision()).select_from(func.generate_series(1, count))
    )
    return sorted(taken)


TOMBSTONE = "tombstone"
"""The outbox's event type of a tombstone (published with a null value)."""
ORDER_HEADERS = ("state_version", "state_revision")
"""Headers of a tombstone: the order of the removal, so a consumer deletes only older rows."""


@dataclass(frozen=True)
class Tombstone:
    """A record removed by its owner: a null value on its key of a state topic, with its order
    (``version``, ``revision``) in the headers."""

    topic: str
    key: str
    version: int
    revision: int
    directions: tuple[str, ...] = ()
    """The record's last directions (its direction feeds drop it too, ADR 26)."""

    def headers(self) -> dict[str, str]:
        headers = dict(zip(ORDER_HEADERS, (str(self.version), str(self.revision)), strict=True))
        if self.directions:
            headers[DIRECTIONS_HEADER] = ",".join(self.directions)
        return headers


class Removal(BaseModel):
    """A tombstone as a consumer receives it: the record's key on the topic and, when the owner
    sent it, the order of the removal (a row at this order or newer stays)."""

    model_config = ConfigDict(frozen=True)

    key: str
    order: tuple[int, int] | None = None

    @classmethod
    def of(cls, key: bytes | None, headers: Iterable[tuple[str, bytes]] | None) -> Removal:
        found = {name: value for name, value in headers or () if name in ORDER_HEADERS}
        try:
            order: tuple[int, int] | None = (
                int(found[ORDER_HEADERS[0]].decode()),
                int(found[ORDER_HEADERS[1]].decode()),
            )
        except (KeyError, ValueError):
            order = None
        return cls(key=(key or b"").decode(errors="replace"), order=order)


Snapshots = Callable[[AsyncSession, Sequence[str]], Awaitable[Sequence[Envelope | Tombstone]]]
"""Reads the records with these ids in the caller's transaction (locking them) and returns their
state envelopes; an id that no longer exists has none, or a tombstone if the source removes
records for good (list memberships)."""


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


_NEWEST = (2**31 - 1, 2**63 - 1)
"""The order of a tombstone that carries none: it removes whatever the row holds."""


@dataclass(frozen=True)
class ReadModel:
    """A table kept from a state topic: one row per record, replaced by newer snapshots.

    ``columns`` maps a snapshot (the typed payload) to the row's column values; the table has
    the key column ``key`` (or several: a tuple, whose values the topic's key joins with ``:``)
    and the order columns ``version`` and ``revision`` (names given). ``sticky`` columns keep a
    value once they have one (a snapshot does not clear them: e.g. a merge alias the consumer
    has re-pointed since).
    """

    table: Table
    columns: Callable[[Any], dict[str, Any]]
    key: str | tuple[str, ...]
    version: str = "version"
    revision: str = "state_revision"
    sticky: frozenset[str] = frozenset()

    @property
    def keys(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else self.key

    def key_values(self, key: str) -> tuple[Any, ...]:
        """The key columns' values of a record's key on the topic."""
        parts = [key] if len(self.keys) == 1 else key.split(":")
        if len(parts) != len(self.keys):
            raise ValueError(f"a key of {len(self.keys)} parts expected, got {key!r}")
        return tuple(
            uuid.UUID(part) if isinstance(self.table.c[name].type, Uuid) else part
            for name, part in zip(self.keys, parts, strict=True)
        )

    def rows(self, payloads: Iterable[BaseModel]) -> list[dict[str, Any]]:
        """Column values of snapshots, the newest per key, in key order (the order the upsert
        locks the rows in, the same in every transaction: ADR 59)."""
        newest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for payload in payloads:
            row = self.columns(payload)
            key = tuple(row[name] for name in self.keys)
            known = newest.get(key)
            if known is None or self._order(row) > self._order(known):
                newest[key] = row
        return [newest[key] for key in sorted(newest)]

    def _order(self, row: Mapping[str, Any]) -> tuple[int, int]:
        return row[self.version], row[self.revision]

    def _upsert_set(self, table: Table, excluded: Any, names: Iterable[str]) -> dict[str, Any]:
        return {
            name: func.coalesce(table.c[name], excluded[name])
            if name in self.sticky
            else excluded[name]
            for name in names
            if name not in self.keys
        }

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
        newer = tuple_(excluded[self.version], excluded[self.revision]) > tuple_(
            table.c[self.version], table.c[self.revision]
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c[name] for name in self.keys],
                set_=self._upsert_set(table, excluded, rows[0]),
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
        records = Copy.of(into, rows).records  # JSONB columns as JSON text
        await driver.copy_records_to_table(staging, records=records, columns=names)
        staged = Table(staging, MetaData(), *(Column(c.name, c.type) for c in into.columns))
        stmt = insert(into).from_select(names, select(*(staged.c[name] for name in names)))
        excluded = stmt.excluded
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[into.c[name] for name in self.keys],
                set_=self._upsert_set(into, excluded, names),
                where=tuple_(excluded[self.version], excluded[self.revision])
                > tuple_(into.c[self.version], into.c[self.revision]),
            )
        )

    async def remove(
        self, session: AsyncSession, removals: Iterable[Removal], *, into: Table | None = None
    ) -> None:
        """Apply tombstones: the records were removed by their owner. A row as new as the
        tombstone or newer (the record came back since) stays."""
        table = self.table if into is None else into
        newest: dict[tuple[Any, ...], tuple[int, int]] = {}
        for removal in removals:
            key = self.key_values(removal.key)
            newest[key] = max(newest.get(key, (0, 0)), removal.order or _NEWEST)
        if not newest:
            return
        removed = values(
            *(Column(name, table.c[name].type) for name in self.keys),
            Column("removed_version", BigInteger),
            Column("removed_revision", BigInteger),
            name="removed",
        ).data([(*key, *order) for key, order in newest.items()])
        await session.execute(
            delete(table).where(
                *(table.c[name] == removed.c[name] for name in self.keys),
                tuple_(table.c[self.version], table.c[self.revision])
                < tuple_(removed.c.removed_version, removed.c.removed_revision),
            )
        )


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
        apply: Callable[[list[BaseModel], list[Removal]], Awaitable[None]],
        *,
        progress: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Call ``apply(snapshots, removals)`` per batch, with the last record of each key in
        the batch (a record removed and back again in one batch is one snapshot); return the
        totals."""
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

            async def write(snapshots: list[BaseModel], purged: list[Removal]) -> None:
                await apply(snapshots, purged)
                done.records += len(snapshots)
                done.tombstones += len(purged)
                if progress is not None:
                    progress(done)

            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=1000)
                last: dict[bytes | None, Any] = {}  # a key's records are in one partition
                for tp, records in batch.items():
                    for record in records:
                        if record.offset < end[tp]:
                            last.pop(record.key, None)  # keep the order of the last ones
                            last[record.key] = record
                snapshots: list[BaseModel] = []
                purged: list[Removal] = []
                for record in last.values():
                    if record.value is None:
                        purged.append(Removal.of(record.key, record.headers))
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
    """Follow a state topic into a read model through the inbox consumer (group ``name``):
    snapshots are applied, tombstones remove the row."""

    async def apply(session: AsyncSession, _envelope: Envelope, payload: BaseModel) -> None:
        if isinstance(payload, Removal):
            await model.remove(session, [payload])
        else:
            await model.apply(session, [payload])

    consumer.subscribe(topic, name, apply)
