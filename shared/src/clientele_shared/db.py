"""Database engine, sessions and the Alembic runner each service's migrations use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def async_url(url: str) -> str:
    """Normalise a postgres URL to the asyncpg dialect SQLAlchemy needs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ValueError("only PostgreSQL URLs are supported")


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int | None = None) -> AsyncEngine:
    """An engine keeping ``pool_size`` connections, opening up to ``max_overflow`` (default:
    ``pool_size``) more when they are all busy and closing those again when they come back."""
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        pool_pre_ping=True,
    )


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
