"""Database engine, sessions and the Alembic runner each service's migrations use."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, event, text
from sqlalchemy.engine.interfaces import AdaptedConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_


def async_url(url: str) -> str:
    """Normalise a postgres URL to the asyncpg dialect SQLAlchemy needs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("only PostgreSQL URLs are supported")


PING_AFTER_IDLE_S = 5.0
"""A pooled connection idle this long is checked with one round trip before it is handed out."""
_RETURNED_AT = "clientele_returned_at"


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    """An engine keeping ``pool_size`` connections, opening up to ``max_overflow`` (default:
    ``pool_size``) more when they are all busy and closing those again when they come back.

    A connection idle for ``PING_AFTER_IDLE_S`` is pinged (``;``, one round trip) when taken
    from the pool, and replaced when the ping fails (the database restarted, a firewall dropped
    it). SQLAlchemy's ``pool_pre_ping`` would cost three round trips (BEGIN, ping, ROLLBACK)
    before every transaction, ADR 53."""
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
    )
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _returned(_dbapi: Any, record: ConnectionPoolEntry) -> None:
        record.info[_RETURNED_AT] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _checked(dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        returned = record.info.get(_RETURNED_AT)
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_S:
            return
        try:
            await_(cast(AdaptedConnection, dbapi).driver_connection.fetchrow(";"))
        except Exception as exc:  # the pool replaces it and tries again
            raise DisconnectionError("a pooled connection failed its ping") from exc

    return engine


def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def statement_session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session for a read that is one statement: its connection is in autocommit mode, so
    there is no BEGIN and no ROLLBACK round trip (a statement sees one snapshot on its own).
    Not for anything that writes or reads twice."""
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=connection) as session:
            yield session


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


def alembic_config(migrations_dir: Path, url: str) -> Config:
    """An Alembic config for one service's migrations folder, without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(migrations_dir, url), revision)


def run_env(metadata: MetaData) -> None:
    """The body of every service's migrations/env.py: run migrations online over asyncpg."""
    import asyncio

    from alembic import context

    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None

    def _migrate(connection: object) -> None:
        context.configure(connection=connection, target_metadata=metadata)  # type: ignore[arg-type]
        with context.begin_transaction():
            context.run_migrations()

    async def _run() -> None:
        engine = create_async_engine(url)
        async with engine.connect() as conn:
            # Replicas starting together migrate one after another, never concurrently.
            await conn.execute(text("SELECT pg_advisory_lock(hashtext('clientele-migrations'))"))
            await conn.commit()
            await conn.run_sync(_migrate)
            await conn.commit()
        await engine.dispose()

    asyncio.run(_run())
