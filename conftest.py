"""Fixtures for every test: real infrastructure, dev keys and tokens, service processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clientele_shared.auth.devtokens import main as token_cli
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.admin import all_topics, ensure_topics
from clientele_shared.events.catalog import REGISTRY, SERVICES
from clientele_testkit.infra import (
    Infrastructure,
    database_for_tests,
    infrastructure,
    use_test_instance,
)
from clientele_testkit.processes import ServiceProcess, wait_for

REPO = Path(__file__).parent
VENV_BIN = Path(sys.executable).parent
use_test_instance(REPO)  # before any fixture reads the environment


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    """Real Kafka, PostgreSQL and Redis: given, from testcontainers, or started locally."""
    with infrastructure(REPO) as found:
        databases = [database_for_tests(service) for service in SERVICES] + ["clientele_test"]
        asyncio.run(_ensure_databases(found, databases))
        # the broker creates no topic on its own (ADR 18): tests publish before services start
        asyncio.run(ensure_topics(found.kafka_bootstrap_servers, all_topics(REGISTRY)))
        yield found


async def _ensure_databases(infra: Infrastructure, names: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(infra.database_url("postgres"))
    try:
        existing = {row[0] for row in await conn.fetch("SELECT datname FROM pg_database")}
        for name in set(names) - existing:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def auth_keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keys = tmp_path_factory.mktemp("keys")
    assert token_cli(["keygen", "--dir", str(keys)]) == 0
    return keys


@pytest.fixture(scope="session")
def issuer(auth_keys: Path) -> TokenIssuer:
    return TokenIssuer.from_file(auth_keys / "private.pem")


@pytest.fixture(scope="session")
def service_env(infra: Infrastructure, auth_keys: Path) -> dict[str, str]:
    """The environment a service process runs with in tests."""
    return {
        **os.environ,
        **infra.as_env(),
        "AUTH_PUBLIC_KEY_FILE": str(auth_keys / "public.pem"),
        "AUTH_PRIVATE_KEY_FILE": str(auth_keys / "private.pem"),
        "LOG_LEVEL": "INFO",
        "OUTBOX_POLL_INTERVAL": "0.5",
    }


@pytest.fixture(scope="session")
def migrated(infra: Infrastructure, service_env: dict[str, str]) -> None:
    for service in SERVICES:
        subprocess.run(
            [str(VENV_BIN / "clientele"), "migrate", service],
            env={**service_env, "DATABASE_URL": infra.test_database_url(service)},
            check=True,
        )


@pytest.fixture
def start_service(
    infra: Infrastructure, service_env: dict[str, str], migrated: None, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def start(name: str, **env: str) -> ServiceProcess:
        database = {"DATABASE_URL": infra.test_database_url(name)}
        process = ServiceProcess(name, {**service_env, **database, **env}, tmp_path, VENV_BIN)
        started.append(process)
        wait_for(process.ready, 60, f"{name} to be ready")
        return process

    yield start
    for process in started:
        process.stop()
