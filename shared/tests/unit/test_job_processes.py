"""A job's child process (ADR 62): a start cancelled half-way (the service stopping) still
leaves ``stop()`` the child to end, never a child running on unwatched."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from clientele_shared.job_processes import JobProcess
from clientele_shared.settings import ServiceSettings
from pydantic import SecretStr


class _Closable:
    async def aclose(self) -> None:
        return None

    async def dispose(self) -> None:
        return None


class _Runtime:
    """What the child closes as it ends; nothing else is used by the work below."""

    def __init__(self) -> None:
        self.redis = _Closable()
        self.engine = _Closable()


def make_runtime(settings: Any) -> Any:
    return _Runtime()


async def sleep_long(runtime: Any) -> None:
    await asyncio.sleep(600)


def _settings() -> ServiceSettings:
    return ServiceSettings(
        service_name="job-test",
        database_url=SecretStr("postgresql+asyncpg://nobody@127.0.0.1:9/none"),
        kafka_bootstrap_servers="127.0.0.1:9",
        redis_url=SecretStr("redis://127.0.0.1:9/0"),
    )


async def test_a_start_cancelled_half_way_leaves_the_child_to_stop() -> None:
    child = JobProcess(_settings(), make_runtime, sleep_long, name="cancelled-start")
    try:
        starting = asyncio.create_task(child.start())
        await asyncio.sleep(0)  # the start runs in its thread
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting
        assert child.pid is not None  # the start finished before the cancellation went on
        await child.stop(grace=10)
        assert child.process.exitcode is not None  # ended, and reaped
    finally:
        if child.process.pid is not None and child.process.exitcode is None:
            child.process.kill()
            child.process.join()
        child.close()


async def test_a_started_child_runs_until_stopped() -> None:
    child = JobProcess(_settings(), make_runtime, sleep_long, name="started")
    try:
        await child.start()
        assert child.process.is_alive()
        await child.stop(grace=10)
        assert child.process.exitcode is not None
    finally:
        child.close()
