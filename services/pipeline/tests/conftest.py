"""Fixtures of the pipeline tests: one service process per module, migrated once."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.testing.infra import Infrastructure
from clientele_shared.testing.processes import ServiceProcess, wait_for
from pipeline_testkit import Stack

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def pipeline_migrated(infra: Infrastructure, service_env: dict[str, str]) -> str:
    url = infra.test_database_url("pipeline")
    subprocess.run(
        [str(VENV_BIN / "clientele"), "migrate", "pipeline"],
        env={**service_env, "DATABASE_URL": url},
        check=True,
    )
    return url


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    pipeline_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The pipeline service as a process, fed by directory events the tests publish."""
    logs = tmp_path_factory.mktemp("pipeline")
    env = {**service_env, "DATABASE_URL": pipeline_migrated}
    process = ServiceProcess("pipeline", env, logs, VENV_BIN)
    try:
        wait_for(process.ready, 60, "pipeline to be ready")
        yield Stack(
            url=process.url,
            bootstrap=infra.kafka_bootstrap_servers,
            issuer=issuer,
            database_url=pipeline_migrated,
        )
    finally:
        process.stop()
