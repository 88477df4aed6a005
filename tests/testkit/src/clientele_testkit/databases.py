"""Dropping the databases tests and benches create for themselves."""

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
