"""Fixtures of the campaigns tests: one service process per module, migrated once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, migrate, running


@pytest.fixture(scope="session")
def campaigns_migrated(infra: Infrastructure, service_env: dict[str, str]) -> str:
    return migrate("campaigns", infra, service_env)


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The campaigns service as a process, fed by directory events the tests publish."""
    logs = tmp_path_factory.mktemp("campaigns")
    with running("campaigns", infra, service_env, campaigns_migrated, issuer, logs) as stack:
        yield stack
