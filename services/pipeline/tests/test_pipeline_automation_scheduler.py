"""The delayed actions' scheduler against real PostgreSQL: an idle poll is one read (ADR 56)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from clientele_pipeline.automation import engine, queries
from clientele_pipeline.tables import metadata
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.outbox import Outbox
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

pytestmark = pytest.mark.integration


class Slept(Exception):
    """The scheduler went to sleep: its poll is over."""


class _OnePoll:
    """``asyncio`` for the engine module, but its first sleep ends the scheduler."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(seconds: float) -> None:
        raise Slept(seconds)


@pytest.fixture
async def database(pipeline_migrated: str) -> AsyncIterator[AsyncEngine]:
    db = create_engine(pipeline_migrated)
    try:
        yield db
    finally:
        await db.dispose()


async def test_an_idle_poll_is_one_read(
    database: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing due: the poll reads both next due times in one statement and takes nothing (it
    was three take_due transactions, a watch transaction and two reads every 0.25 s)."""
    sessions = sessionmaker(database)
    async with sessions() as session:
        due_in, watch_in = await queries.seconds_to_next(session)
    if (due_in is not None and due_in <= 0) or (watch_in is not None and watch_in <= 0):
        pytest.skip("another test left a delayed action due now")
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    monkeypatch.setattr(engine, "asyncio", _OnePoll())
    outbox = Outbox("pipeline", REGISTRY, metadata.tables["outbox"])
    event.listen(database.sync_engine, "before_cursor_execute", seen)
    try:
        with pytest.raises(Slept):
            await engine.scheduler(sessions, outbox)
    finally:
        event.remove(database.sync_engine, "before_cursor_execute", seen)
    assert statements == ["SELECT", "DELETE"]  # the one read; the first poll also prunes
