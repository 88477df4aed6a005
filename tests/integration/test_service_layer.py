"""The shared service layer against real PostgreSQL: a unit of work commits rows, audit entries
and outbox events together or nothing; the versioned write locks, checks If-Match and audits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from clientele_shared import db as db_module
from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import TOGETHER_UP_TO
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.pipeline import DEAL_DELETED, DealDeleted
from clientele_shared.events.tables import outbox_table
from clientele_shared.http.concurrency import PreconditionFailed
from clientele_shared.service_layer import (
    UnitOfWork,
    Versioned,
    actor_of,
    audit_table,
    audit_trail,
    create_append_only_table,
    defer_version,
    unit_of_work,
    write_version,
    write_version_row,
)
from clientele_testkit.infra import Infrastructure
from sqlalchemy import (
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    Uuid,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

pytestmark = pytest.mark.integration
ALICE = Principal(subject="alice", roles=frozenset({"sales"}), name="Алиса")


@dataclass
class Db:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    things: Table
    audit: Table
    outbox: Outbox

    async def count(self, table: Table) -> int:
        async with self.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)


@pytest.fixture
async def db(infra: Infrastructure) -> AsyncIterator[Db]:
    schema = f"service_layer_{uuid.uuid4().hex[:8]}"
    metadata = MetaData(schema=schema)
    things = Table(
        "things",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("name", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), server_default=func.now()),
        Column("updated_by", String(200)),
    )
    audit = audit_table(metadata)
    outbox = outbox_table(metadata)
    engine = create_engine(infra.database_url("clientele_test"))
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        await conn.run_sync(lambda sync: things.create(sync))
        await conn.run_sync(lambda sync: outbox.create(sync))
        await conn.run_sync(lambda sync: create_append_only_table(sync, audit))
    try:
        yield Db(engine, sessionmaker(engine), things, audit, Outbox("pipeline", REGISTRY, outbox))
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await engine.dispose()


def _deleted(db: Db, thing_id: uuid.UUID, version: int) -> Envelope:
    payload = DealDeleted(deal_id=thing_id, version=version, organization_id=uuid.uuid4())
    return db.outbox.envelope(DEAL_DELETED, payload, aggregate_id=str(thing_id))


async def _thing(db: Db) -> uuid.UUID:
    thing_id = uuid.uuid4()
    async with db.sessions() as session, session.begin():
        await session.execute(insert(db.things).values(id=thing_id, name="a", version=1))
    return thing_id


async def test_a_unit_of_work_commits_everything_or_nothing(db: Db) -> None:
    thing_id = await _thing(db)
    things = Versioned(db.things, "thing")

    async def failing() -> None:
        async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
            row = await things.lock(uow.session, thing_id)
            assert row is not None
            await write_version(
                uow,
                things,
                thing_id,
                current=row["version"],
                expected={1},
                values={"name": "b"},
                action="renamed",
                changes={"name": {"old": "a", "new": "b"}},
                events=[_deleted(db, thing_id, 2)],
            )
            raise RuntimeError("a later step failed")

    with pytest.raises(RuntimeError):
        await failing()
    assert await db.count(db.audit) == 0
    assert await db.count(db.outbox.table) == 0
    async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
        row = await things.lock(uow.session, thing_id)
        assert row is not None
        version = await write_version(
            uow,
            things,
            thing_id,
            current=row["version"],
            expected={1},
            values={"name": "b"},
            action="renamed",
            changes={"name": {"old": "a", "new": "b"}},
            events=[_deleted(db, thing_id, 2)],
        )
    assert version == 2
    assert await db.count(db.outbox.table) == 1
    async with db.sessions() as session:
        [entry] = await audit_trail(session, db.audit, "thing", thing_id)
        assert (entry.action, entry.version, entry.actor_subject) == ("renamed", 2, "alice")
        assert entry.actor_name == "Алиса"
        assert entry.changes == {"name": {"old": "a", "new": "b"}}
        assert await session.scalar(select(db.things.c.updated_by)) == "alice"


async def test_the_versioned_write_lets_one_of_two_writers_win(db: Db) -> None:
    thing_id = await _thing(db)
    things = Versioned(db.things, "thing")

    async def rename(name: str) -> str:
        try:
            async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
                row = await things.lock(uow.session, thing_id)
                assert row is not None
                await asyncio.sleep(0.05)
                await write_version(
                    uow,
                    things,
                    thing_id,
                    current=row["version"],
                    expected={1},
                    values={"name": name},
                    action="renamed",
                )
        except PreconditionFailed as exc:
            return f"412 {exc.extensions['current_version']}"
        return "ok"

    assert sorted(await asyncio.gather(rename("b"), rename("c"))) == ["412 2", "ok"]
    assert await db.count(db.audit) == 1


async def test_the_audit_trail_is_append_only(db: Db) -> None:
    thing_id = await _thing(db)
    async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
        await uow.audit(kind="thing", entity_id=thing_id, action="seen", version=1)
    for statement in (
        f"UPDATE {db.audit.fullname} SET note = 'x'",
        f"DELETE FROM {db.audit.fullname}",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(text(statement))
    assert await db.count(db.audit) == 1


async def test_appended_rows_and_events_are_one_statement_at_the_end(db: Db) -> None:
    """ADR 53: a versioned write costs the lock, the update and one insert of the audit entries,
    the other appended rows and the events together; nothing appended is written before."""
    thing_id = await _thing(db)
    things = Versioned(db.things, "thing")
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
            row = await things.lock(uow.session, thing_id)
            assert row is not None
            new = await write_version_row(
                uow,
                things,
                thing_id,
                current=row["version"],
                expected={1},
                values={"name": "b"},
                action="renamed",
                events=[_deleted(db, thing_id, 2)],
            )
            await uow.audit(kind="thing", entity_id=thing_id, action="seen", version=2)
            await uow.append(db.things, [{"id": uuid.uuid4(), "name": "c", "version": 1}])
            written = await uow.session.scalar(select(func.count()).select_from(db.audit))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert (new["name"], new["version"], new["updated_by"]) == ("b", 2, "alice")
    assert written == 0
    assert statements == ["SELECT", "UPDATE", "SELECT", "WITH", "NOTIFY"]  # no relay: NOTIFY
    assert await db.count(db.things) == 2
    assert await db.count(db.outbox.table) == 1
    async with db.sessions() as session:
        trail = await audit_trail(session, db.audit, "thing", thing_id)
    assert [entry.action for entry in trail] == ["renamed", "seen"]


async def test_the_statement_of_appended_rows_and_events_is_compiled_once(db: Db) -> None:
    """The one insert of a unit of work's audit entries, appended rows and events is taken from
    SQLAlchemy's compiled cache the second time a write of the same shape runs (a multi-row
    VALUES has no cache key and was compiled again on every write)."""
    hits: list[object] = []

    def seen(_conn: object, _cursor: object, statement: str, *args: object) -> None:
        if statement.startswith("WITH"):
            hits.append(getattr(args[1], "cache_hit", None))

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        for _ in range(2):
            thing_id = uuid.uuid4()
            async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
                await uow.audit_many(
                    kind="thing", action="seen", entries=[(thing_id, 1, {}), (thing_id, 2, {})]
                )
                await uow.append(db.things, [{"id": thing_id, "name": "c", "version": 1}])
                uow.stage(_deleted(db, thing_id, 1))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    dialect = db.engine.sync_engine.dialect
    assert hits == [dialect.CACHE_MISS, dialect.CACHE_HIT]
    assert await db.count(db.audit) == 4
    assert await db.count(db.things) == 2
    assert await db.count(db.outbox.table) == 2


async def test_many_appended_rows_are_written_too(db: Db) -> None:
    ids = [uuid.uuid4() for _ in range(TOGETHER_UP_TO + 5)]
    async with unit_of_work(db.sessions, db.outbox, db.audit, ALICE) as uow:
        await uow.audit_many(kind="thing", action="seen", entries=[(i, 1, {}) for i in ids])
        uow.stage(*(_deleted(db, i, 1) for i in ids[:3]))
    assert await db.count(db.audit) == len(ids)
    assert await db.count(db.outbox.table) == 3


@pytest.fixture
async def shelves(db: Db) -> Table:
    """Versioned records with columns of the kinds deferred writes carry (arrays, JSON lists)."""
    table = Table(
        "shelves",
        db.things.metadata,
        Column("id", Uuid, primary_key=True),
        Column("name", String(100), nullable=False),
        Column("tags", ARRAY(String(100)), nullable=False),
        Column("person_ids", ARRAY(Uuid), nullable=False),
        Column("items", JSONB, nullable=False),
        Column("amount", Numeric(18, 2)),
        Column("due", Date),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), server_default=func.now()),
        Column("updated_by", String(200)),
    )
    async with db.engine.begin() as conn:
        await conn.run_sync(lambda sync: table.create(sync))
    return table


async def _shelf(db: Db, shelves: Table) -> uuid.UUID:
    shelf_id = uuid.uuid4()
    async with db.sessions() as session, session.begin():
        await session.execute(
            insert(shelves).values(
                id=shelf_id, name="a", tags=[], person_ids=[], items=[], version=1
            )
        )
    return shelf_id


@asynccontextmanager
async def _deferring(db: Db) -> AsyncIterator[UnitOfWork]:
    """A unit of work that keeps its versioned writes for its flush (ADR 60), committed."""
    async with db.sessions() as session, session.begin():
        uow = UnitOfWork(
            session,
            db.outbox,
            db.audit,
            actor_of(ALICE),
            batched=True,
            defer_at=datetime.now(UTC),
        )
        yield uow
        await uow.finish()


async def test_deferred_versions_are_written_by_one_update_with_all_their_values(
    db: Db, shelves: Table
) -> None:
    record = Versioned(shelves, "shelf")
    one, two = await _shelf(db, shelves), await _shelf(db, shelves)
    person = uuid.uuid4()
    values: dict[uuid.UUID, dict[str, Any]] = {
        one: {
            "name": "b",
            "tags": ['a "quoted", comma', "back\\slash", "{brace}", "NULL"],
            "person_ids": [person],
            "items": [{"sku": "x", "qty": 2}, ["nested"]],
            "amount": Decimal("12.50"),
            "due": date(2026, 12, 31),
        },
        two: {
            "name": "c",
            "tags": [],
            "person_ids": [],
            "items": [],
            "amount": None,
            "due": None,
        },
    }
    updates: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("UPDATE"):
            updates.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        async with _deferring(db) as uow:
            for shelf_id, shelf in values.items():
                await defer_version(
                    uow, record, shelf_id, current=1, expected={1}, values=shelf, action="u"
                )
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert len(updates) == 1
    async with db.sessions() as session:
        rows = {row.id: row for row in (await session.execute(select(shelves))).all()}
    for shelf_id, shelf in values.items():
        row = rows[shelf_id]
        assert {name: getattr(row, name) for name in shelf} == shelf
        assert (row.version, row.updated_by) == (2, "alice")
    assert await db.count(db.audit) == 2


async def test_a_deferred_version_of_a_record_changed_underneath_is_refused(
    db: Db, shelves: Table
) -> None:
    """A record the caller did not lock and another writer changed before the flush is not
    written by its UPDATE: the flush refuses the unit of work (412) instead of committing the
    others, the audit entries and the events without that record's change."""
    record = Versioned(shelves, "shelf")
    kept, moved = await _shelf(db, shelves), await _shelf(db, shelves)

    async def write() -> None:
        async with _deferring(db) as uow:
            for shelf_id in (kept, moved):
                await defer_version(
                    uow,
                    record,
                    shelf_id,
                    current=1,
                    expected={1},
                    values={"name": "mine", "tags": ["t"]},
                    action="u",
                    events=[_deleted(db, shelf_id, 2)],
                )
            async with db.sessions() as other, other.begin():
                await other.execute(
                    update(shelves).where(shelves.c.id == moved).values(name="theirs", version=2)
                )

    with pytest.raises(PreconditionFailed):
        await write()
    async with db.sessions() as session:
        rows = {row.id: (row.name, row.version) for row in (await session.execute(select(shelves)))}
    assert rows == {kept: ("a", 1), moved: ("theirs", 2)}
    assert await db.count(db.audit) == 0
    assert await db.count(db.outbox.table) == 0


async def test_an_idle_pooled_connection_that_died_is_replaced(
    infra: Infrastructure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool pings a connection idle for PING_AFTER_IDLE_S before handing it out (one round
    trip, instead of pool_pre_ping's three before every transaction) and replaces a dead one."""
    monkeypatch.setattr(db_module, "PING_AFTER_IDLE_S", 0.0)
    engine = create_engine(infra.database_url("clientele_test"), pool_size=1, max_overflow=0)
    admin = create_engine(infra.database_url("clientele_test"), pool_size=1)
    try:
        async with engine.connect() as conn:
            first = await conn.scalar(text("SELECT pg_backend_pid()"))
        async with admin.connect() as other:
            # with a timeout, it returns once the backend is gone
            terminate = text("SELECT pg_terminate_backend(:pid, 10000)")
            assert await other.scalar(terminate, {"pid": first})
        async with engine.connect() as conn:
            second = await conn.scalar(text("SELECT pg_backend_pid()"))
        assert second != first
    finally:
        await engine.dispose()
        await admin.dispose()
