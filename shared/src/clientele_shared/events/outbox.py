"""Transactional outbox: write events with the state change; a relay publishes them to Kafka."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel
from pydantic_core import to_json
from sqlalchemy import Table, delete, event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.orm import Session

from clientele_shared.bulk import COPY_FROM, Copy, insert_together
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.feeds import (
    DirectionFeeds,
    FeedRecord,
    route_headers,
    routing_headers,
)
from clientele_shared.events.producer import Producer
from clientele_shared.events.registry import Registry
from clientele_shared.events.state import TOMBSTONE, StateSource, Tombstone
from clientele_shared.observability import (
    OUTBOX_BACKLOG,
    OUTBOX_PUBLISHED,
    causation_id_var,
    current_correlation_id,
    get_logger,
)

NOTIFY_CHANNEL = "clientele_outbox"
_WAKE_AFTER_COMMIT = "clientele_outbox_wake"
log = get_logger(__name__)


def _headers(event_type: str, schema_version: int, correlation_id: str) -> dict[str, str]:
    """An outbox row's headers but those a relay routes by."""
    return {
        "event_type": event_type,
        "schema_version": str(schema_version),
        "correlation_id": correlation_id,
    }


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    wake = session.info.pop(_WAKE_AFTER_COMMIT, None)
    if wake is not None:
        wake()


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop(_WAKE_AFTER_COMMIT, None)


class Outbox:
    """Adds events to the outbox inside the caller's transaction.

    The relay learns of them without waiting for its poll: with `wake` (the relay of this
    process, `OutboxRelay.wake`), called once the transaction has committed; without one (a
    process that runs no relay), by a `NOTIFY` in the transaction. NOTIFY takes a lock global to
    the PostgreSQL server from the commit to its end, serialising the commits of every service
    on it, so a service's own writes never use it (ADR 17).

    With state sources (ADR 18), staging a change event also stages the full state of each
    record it changed, read in the same transaction, for the entity's state topic.
    """

    def __init__(
        self,
        service: str,
        registry: Registry,
        table: Table,
        *,
        wake: Callable[[], None] | None = None,
    ) -> None:
        self.service = service
        self.registry = registry
        self.table = table
        self.wake = wake
        self.state_sources: list[StateSource] = []

    def add_state_source(self, source: StateSource) -> None:
        self.registry.check_publish(self.service, source.topic)
        self.state_sources.append(source)

    def envelope(
        self,
        event_type: str,
        payload: BaseModel,
        *,
        aggregate_id: str,
        directions: Sequence[str] = (),
        actor: Actor | None = None,
        version: int | None = None,
    ) -> Envelope:
        spec = (
            self.registry.latest(event_type)
            if version is None
            else self.registry.spec(event_type, version)
        )
        if not isinstance(payload, spec.payload):
            raise TypeError(f"{event_type} needs a {spec.payload.__name__} payload")
        self.registry.check_publish(self.service, spec.topic)
        return Envelope(
            type=spec.name,
            schema_version=spec.version,
            producer=self.service,
            correlation_id=current_correlation_id(),
            causation_id=causation_id_var.get(),
            actor=actor,
            directions=tuple(sorted(set(directions))),
            aggregate_id=aggregate_id,
            payload=payload.model_dump(mode="json"),
        )

    async def add(self, session: AsyncSession, envelope: Envelope) -> Envelope:
        """Stage one event; it is published only if the session's transaction commits."""
        await self.add_many(session, [envelope])
        return envelope

    async def add_many(
        self,
        session: AsyncSession,
        envelopes: Sequence[Envelope],
        *,
        together: Sequence[tuple[Table, list[dict[str, Any]]]] = (),
    ) -> None:
        """Stage events with one multi-row insert (a COPY from ``COPY_FROM`` events), in the
        caller's transaction; the relay is woken when it commits. ``together``: other tables'
        rows (the operation's audit entries...) written in the same statement."""
        if len(envelopes) >= COPY_FROM:
            await insert_together(session, together)
            await Copy.of(self.table, self.rows(envelopes)).write(session)
        else:
            rows = self.rows(envelopes)
            await insert_together(session, [*together, (self.table, rows)])
        if not envelopes:
            return
        await self.stage_state(session, envelopes)
        await self.signal(session)

    async def signal(self, session: AsyncSession) -> None:
        """Have the relay woken when the session's transaction commits (for rows staged in it
        by other means, such as COPY of `rows()`)."""
        if self.wake is not None:
            session.info[_WAKE_AFTER_COMMIT] = self.wake
        else:
            await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))

    async def stage_state(self, session: AsyncSession, envelopes: Sequence[Envelope]) -> int:
        """Stage the state records of the records these change events changed; return how many.

        ``add_many`` calls it; a bulk writer that stages its events otherwise (COPY) calls it
        itself, after writing the records.
        """
        staged = 0
        for source in self.state_sources:
            keys = list(
                dict.fromkeys(
                    key
                    for envelope in envelopes
                    if self.registry.spec(envelope.type, envelope.schema_version).topic
                    == source.topic
                    for key in source.keys(envelope)
                )
            )
            if not keys:
                continue
            snapshots = await source.snapshots(session, keys)
            if snapshots:
                await session.execute(insert(self.table), self.rows(snapshots))
                staged += len(snapshots)
        return staged

    async def copy_with_state(
        self,
        session: AsyncSession,
        events: Sequence[Envelope],
        states: Sequence[Envelope | Tombstone],
    ) -> int:
        """Stage change events and the state records of what they changed by one COPY, events
        first (as ``add_many`` orders them); how many rows. For a bulk writer that holds every
        record it wrote and built their state records itself, revisions taken by
        :func:`~clientele_shared.events.state.next_revisions` while it holds the records
        (ADR 61): nothing is read back, unlike ``stage_state``. The relay is woken at the
        commit. The rows are made in a worker thread (their JSON is CPU work)."""
        copy = await asyncio.to_thread(lambda: Copy.of(self.table, self.rows([*events, *states])))
        if not await copy.write(session):
            return 0
        await self.signal(session)
        return len(copy.records)

    def payload_rows(
        self,
        event_type: str,
        model: type[BaseModel],
        payloads: Iterable[tuple[str, Sequence[str], dict[str, Any]]],
        *,
        actor: Actor | None = None,
    ) -> list[dict[str, Any]]:
        """The outbox rows of events of ``event_type`` (its newest version) from ``(key,
        directions, payload)``, each payload already what its model dumps as JSON: what
        :meth:`envelope` and :meth:`rows` make, without a model per event (ADR 70). For a bulk
        writer whose records were validated, which proves by test that its payloads are the
        model's: ``model``, which must be the newest version's (as :meth:`envelope` checks). A
        payload that carries ``changes`` (whose directions header would say what a record left)
        is refused."""
        spec = self.registry.latest(event_type)
        self.registry.check_publish(self.service, spec.topic)
        if spec.payload is not model:
            raise TypeError(f"{event_type} needs a {spec.payload.__name__} payload")
        if "changes" in spec.payload.model_fields:
            raise TypeError(f"{event_type} carries changes: build its envelopes")
        correlation = current_correlation_id()
        headers = _headers(spec.name, spec.version, correlation)
        common = {
            "type": spec.name,
            "schema_version": spec.version,
            "occurred_at": datetime.now(UTC),
            "producer": self.service,
            "correlation_id": correlation,
            "causation_id": causation_id_var.get(),
            "actor": actor,
        }
        rows = []
        for key, directions, payload in payloads:
            event_id = uuid.uuid4()
            ordered = sorted(set(directions))
            envelope = {
                "event_id": event_id,
                **common,
                "directions": ordered,
                "aggregate_id": key,
                "payload": payload,
            }
            rows.append(
                {
                    "event_id": event_id,
                    "topic": spec.topic,
                    "key": key,
                    "event_type": spec.name,
                    "value": to_json(envelope),
                    "headers": {**headers, **route_headers(ordered, payload)},
                }
            )
        return rows

    def rows(self, envelopes: Iterable[Envelope | Tombstone]) -> list[dict[str, Any]]:
        """The outbox rows of events this service may publish (for a bulk writer such as COPY);
        a tombstone's row has an empty value and is published with a null one."""
        rows = []
        for envelope in envelopes:
            if isinstance(envelope, Tombstone):
                self.registry.check_publish(self.service, envelope.topic)
                rows.append(
                    {
                        "event_id": uuid.uuid4(),
                        "topic": envelope.topic,
                        "key": envelope.key,
                        "event_type": TOMBSTONE,
                        "value": b"",
                        "headers": envelope.headers(),
                    }
                )
                continue
            spec = self.registry.spec(envelope.type, envelope.schema_version)
            self.registry.check_publish(self.service, spec.topic)
            rows.append(
                {
                    "event_id": envelope.event_id,
                    "topic": spec.topic,
                    "key": envelope.aggregate_id,
                    "event_type": envelope.type,
                    "value": envelope.to_bytes(),
                    "headers": {
                        **_headers(envelope.type, envelope.schema_version, envelope.correlation_id),
                        **routing_headers(envelope),
                    },
                }
            )
        return rows

    async def publish(
        self,
        session: AsyncSession,
        event_type: str,
        payload: BaseModel,
        *,
        aggregate_id: str,
        directions: Sequence[str] = (),
        actor: Actor | None = None,
    ) -> Envelope:
        """Build and stage an event in one call."""
        return await self.add(
            session,
            self.envelope(
                event_type, payload, aggregate_id=aggregate_id, directions=directions, actor=actor
            ),
        )


def _value(row: Any) -> bytes | None:
    """An outbox row's record value: none for a tombstone."""
    value: bytes | None = None if row.event_type == TOMBSTONE else row.value
    return value


class OutboxRelay:
    """Publishes outbox rows in order, one relay of a service at a time, then deletes them.

    Several replicas may run: each batch is claimed under a transaction-scoped advisory lock
    (one per service) plus FOR UPDATE SKIP LOCKED, so at most one relay publishes at a time and
    the order of events per aggregate key is kept. A relay killed after publishing and before its
    commit republishes the batch; consumers deduplicate by event id (the inbox).
    """

    def __init__(
        self,
        service: str,
        engine: AsyncEngine,
        table: Table,
        producer: Producer,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retry_delay: float = 1.0,
        linger: float = 0.005,
        feeds: DirectionFeeds | None = None,
    ) -> None:
        self.service = service
        self.feeds = feeds
        self.engine = engine
        self.table = table
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retry_delay = retry_delay
        self.linger = linger
        self._backlog_observed = 0.0
        self._lock_key = zlib.crc32(f"clientele-outbox:{service}".encode())
        self._wake = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        self._failing: tuple[float, str] | None = None

    def health(self) -> str:
        """'ok', or for how long and why the relay has been failing."""
        if self._failing is None:
            return "ok"
        since, error = self._failing
        return f"retrying for {time.monotonic() - since:.0f}s: {error}"

    def wake(self) -> None:
        """Publish now: events were committed (called by this process's `Outbox`)."""
        self._wake.set()

    async def publish_batch(self) -> int:
        """Publish up to one batch; return how many events went out (-1: another relay is
        publishing)."""
        async with self.engine.begin() as conn:
            locked = await conn.scalar(select(func.pg_try_advisory_xact_lock(self._lock_key)))
            if not locked:
                return -1
            rows = (
                await conn.execute(
                    select(
                        self.table.c.id,
                        self.table.c.topic,
                        self.table.c.key,
                        self.table.c.event_type,
                        self.table.c.value,
                        self.table.c.headers,
                    )
                    .order_by(self.table.c.id)
                    .limit(self.batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            feed = self._feed_records(rows)
            if feed and self.feeds is not None:
                await self.feeds.prepare(record for records in feed.values() for record in records)
            pending = []
            for index, row in enumerate(rows):
                headers = [(name, str(value).encode()) for name, value in row.headers.items()]
                key = row.key.encode()
                pending.append(
                    await self.producer.send(row.topic, value=_value(row), key=key, headers=headers)
                )
                for record in feed.get(index, ()):
                    pending.append(
                        await self.producer.send(
                            record.topic.name, value=record.value, key=key, headers=headers
                        )
                    )
            await asyncio.gather(*pending)
            await conn.execute(delete(self.table).where(self.table.c.id.in_([r.id for r in rows])))
        OUTBOX_PUBLISHED.labels(self.service).inc(len(rows))
        return len(rows)

    def _feed_records(self, rows: Sequence[Any]) -> dict[int, list[FeedRecord]]:
        """The per-direction feed records of a batch, by the row they copy (ADR 26)."""
        if self.feeds is None:
            return {}
        feed = {
            index: self.feeds.route(row.topic, row.key, _value(row), row.headers)
            for index, row in enumerate(rows)
        }
        return {index: records for index, records in feed.items() if records}

    async def backlog(self, conn: AsyncConnection | None = None) -> int:
        async with contextlib.AsyncExitStack() as stack:
            if conn is None:
                conn = await stack.enter_async_context(self.engine.connect())
            count = await conn.scalar(select(func.count()).select_from(self.table))
        return int(count or 0)

    async def _publish_all(self) -> None:
        """Publish until the outbox is empty. While another replica's relay holds the lock, try
        again shortly (for up to a poll interval): it may have read its batch before the commit
        that woke this one."""
        busy_until = time.monotonic() + self.poll_interval
        while True:
            published = await self.publish_batch()
            if published == self.batch_size:
                continue
            if published >= 0 or time.monotonic() > busy_until:
                return
            await asyncio.sleep(self.linger or 0.005)

    async def _listen(self, dsn: str) -> None:
        self._listener = await asyncpg.connect(dsn)
        await self._listener.add_listener(NOTIFY_CHANNEL, lambda *_: self._wake.set())

    async def run(self) -> None:
        """Publish until cancelled; wake on `wake()` or NOTIFY, poll as a fallback."""
        dsn = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    await self._listen(dsn)
                self._wake.clear()
                await self._publish_all()
                self._failing = None
                if time.monotonic() - self._backlog_observed >= 1.0:
                    OUTBOX_BACKLOG.labels(self.service).set(await self.backlog())
                    self._backlog_observed = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval)
                    # Woken by a commit: let the commits right behind it join the same batch.
                    await asyncio.sleep(self.linger)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep relaying: Kafka or the database may come back
                log.warning("outbox relay failed, retrying", error=repr(exc))
                if self._failing is None:
                    self._failing = (time.monotonic(), repr(exc))
                else:
                    self._failing = (self._failing[0], repr(exc))
                if self._listener is not None and not self._listener.is_closed():
                    await self._listener.close()
                self._listener = None
                await asyncio.sleep(self.retry_delay)

    async def close(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
