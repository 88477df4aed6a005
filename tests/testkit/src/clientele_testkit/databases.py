"""The databases tests and benches create for themselves: cut off, then dropped."""

from __future__ import annotations

import asyncio

import asyncpg


async def drop_database(postgres_url: str, name: str) -> None:
    """Drop a database of the server at ``postgres_url``, if it exists.

    ``WITH (FORCE)`` fails for a non-superuser while an autovacuum worker (a superuser's process)
    works in it ("must be a superuser to terminate superuser process"); a plain DROP cancels
    autovacuum itself. So the caller's own sessions there are ended and a plain DROP is tried
    again while something still holds the database."""
    conn = await asyncpg.connect(f"{postgres_url.rstrip('/')}/postgres")
    try:
        for attempt in range(10):
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND usename = current_user AND pid <> pg_backend_pid()",
                name,
            )
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                return
            except asyncpg.ObjectInUseError:
                if attempt == 9:
                    raise
                await asyncio.sleep(1)
    finally:
        await conn.close()


async def refuse_connections(postgres_url: str, name: str, refuse: bool) -> None:
    """Make a database of the server at ``postgres_url`` refuse every connection ("too many
    connections for database", SQLSTATE 53300) and end its clients' open sessions (57P01): an
    outage, for the service using it. Or, with ``refuse`` false, accept connections again.

    Only client backends are ended: an autovacuum worker there is a superuser's process, which
    a non-superuser may not terminate, and is no session of the service's anyway."""
    conn = await asyncpg.connect(f"{postgres_url.rstrip('/')}/postgres")
    try:
        await conn.execute(f'ALTER DATABASE "{name}" CONNECTION LIMIT {0 if refuse else -1}')
        if refuse:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND backend_type = 'client backend'",
                name,
            )
    finally:
        await conn.close()
