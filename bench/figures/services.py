"""Helpers for figures that run a Clientele service as a process (not a figure module itself).

A service gets its own database (`clientele_bench_<service>`, migrated with `clientele migrate`
once per bench and dropped when the bench ends) and its own Redis database number
(`BENCH_REDIS_DB`, default 14), whose keys of that service are deleted before each run and at
the end, so a bench never mixes its data with a development stack's or the tests'.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
from clientele_shared.auth.devtokens import main as token_cli
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.databases import drop_database
from clientele_testkit.processes import free_port
from redis.asyncio import Redis

from bench.processes import Proc
from bench.registry import Context

CLIENTELE = Path(sys.executable).parent / "clientele"


def bench_redis_url(redis_url: str) -> str:
    """The infrastructure's Redis with the bench's own database number."""
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{os.environ.get('BENCH_REDIS_DB', '14')}"))


async def clear_redis(redis_url: str, pattern: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        batch = [key async for key in redis.scan_iter(match=pattern, count=1000)]
        for first in range(0, len(batch), 1000):
            await redis.delete(*batch[first : first + 1000])
    finally:
        await redis.aclose()


def auth_keys(ctx: Context) -> Path:
    """A key pair for the service's bearer tokens, made once per bench."""
    if "auth_keys" not in ctx.shared:
        holder = tempfile.TemporaryDirectory(prefix="clientele-bench-keys-")
        ctx.cleanup.callback(holder.cleanup)
        if token_cli(["keygen", "--dir", holder.name]) != 0:
            raise RuntimeError("could not make the bench's token keys")
        ctx.shared["auth_keys"] = Path(holder.name)
    keys: Path = ctx.shared["auth_keys"]
    return keys


def issuer(ctx: Context) -> TokenIssuer:
    return TokenIssuer.from_file(auth_keys(ctx) / "private.pem")


async def service_database(ctx: Context, service: str) -> str:
    """`clientele_bench_<service>`, dropped and migrated afresh once per bench; its URL."""
    key = f"database:{service}"
    if key in ctx.shared:
        url: str = ctx.shared[key]
        return url
    name = f"clientele_bench_{service}"
    postgres = ctx.infra.postgres_url
    await drop_database(postgres, name)
    conn = await asyncpg.connect(f"{postgres.rstrip('/')}/postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    ctx.cleanup.push_async_callback(drop_database, postgres, name)
    url = ctx.infra.database_url(name)
    await migrate_service(ctx, service, url)
    ctx.shared[key] = url
    redis = bench_redis_url(ctx.infra.redis_url)
    ctx.cleanup.push_async_callback(clear_redis, redis, f"{service}:*")
    return url


async def migrate_service(ctx: Context, service: str, url: str, seconds: float = 120) -> None:
    """`clientele migrate <service>` on the database at ``url``, as the init container does."""
    migrate = await asyncio.create_subprocess_exec(
        str(CLIENTELE),
        "migrate",
        service,
        env={**os.environ, **ctx.infra.as_env(), "DATABASE_URL": url},
        cwd=ctx.repo,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(seconds):
        output, _ = await migrate.communicate()
    if migrate.returncode != 0:
        raise RuntimeError(f"clientele migrate {service} failed:\n{output.decode()[-2000:]}")


async def start_service(ctx: Context, service: str, database_url: str, **env: str) -> Proc:
    """`clientele serve <service>` on a free port, as in production; waits until ready."""
    keys = auth_keys(ctx)
    port = free_port()
    proc = await ctx.processes.start(
        service,
        [str(CLIENTELE), "serve", service, "--port", str(port)],
        env={
            **os.environ,
            **ctx.infra.as_env(),
            "DATABASE_URL": database_url,
            "REDIS_URL": bench_redis_url(ctx.infra.redis_url),
            "AUTH_PUBLIC_KEY_FILE": str(keys / "public.pem"),
            "AUTH_PRIVATE_KEY_FILE": str(keys / "private.pem"),
            **env,
        },
        cwd=ctx.repo,
    )
    proc.url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client, asyncio.timeout(90):
        while True:
            proc.check()
            try:
                if (await client.get(f"{proc.url}/health/ready")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
