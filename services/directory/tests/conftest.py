"""Directory integration fixtures: one directory process per test module, topic readers."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from directory_testkit import TopicTail

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    """Extra environment for the module's directory process (override in a module)."""
    return {}


@pytest.fixture(scope="module")
def directory(
    infra: Infrastructure,
    service_env: dict[str, str],
    migrated: None,
    tmp_path_factory: pytest.TempPathFactory,
    directory_env: dict[str, str],
) -> Iterator[ServiceProcess]:
    """The directory service as a process on its test database, shared by a module's tests."""
    env = {
        **service_env,
        "DATABASE_URL": infra.test_database_url("directory"),
        **directory_env,
    }
    process = ServiceProcess("directory", env, tmp_path_factory.mktemp("directory"), VENV_BIN)
    try:
        wait_for(process.ready, 60, "directory to be ready")
        yield process
    finally:
        process.stop()


@pytest.fixture
async def tail(infra: Infrastructure) -> AsyncIterator[Callable[[str], TopicTail]]:
    """``await tail(topic).start()``: a reader of what is published from now on."""
    started: list[TopicTail] = []

    def make(topic: str) -> TopicTail:
        reader = TopicTail(infra.kafka_bootstrap_servers, topic)
        started.append(reader)
        return reader

    yield make
    for reader in started:
        await reader.stop()
