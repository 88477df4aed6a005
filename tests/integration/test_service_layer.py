"""The shared service layer against real PostgreSQL: a unit of work commits rows, audit entries
and outbox events together or nothing; the versioned write locks, checks If-Match and audits."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from clientele_shared.auth.principal import Principal
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.pipeline import DEAL_DELETED, DealDeleted
from clientele_shared.events.tables import outbox_table
from clientele_shared.http.concurrency import PreconditionFailed
from clientele_shared.service_layer import (
    Versioned,
    audit_table,
    audit_trail,
    create_append_only_table,
    unit_of_work,
    write_version,
)
from clientele_testkit.infra import Infrastructure
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    func,
    insert,
    select,
    text,
)
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
