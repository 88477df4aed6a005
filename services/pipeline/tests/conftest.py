"""Fixtures of the pipeline tests: one service process per module, migrated once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, migrate, running


@pytest.fixture(scope="session")
def pipeline_migrated(infra: Infrastructure, service_env: dict[str, str]) -> str:
    return migrate("pipeline", infra, service_env)


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
    with running("pipeline", infra, service_env, pipeline_migrated, issuer, logs) as stack:
        yield stack
