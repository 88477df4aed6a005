"""Fixtures of the interactions tests: one service process per module, migrated once."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.testing.infra import Infrastructure
from clientele_shared.testing.processes import ServiceProcess, wait_for
from interactions_testkit import Stack, bearer

VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="session")
def interactions_migrated(infra: Infrastructure, service_env: dict[str, str]) -> str:
    url = infra.test_database_url("interactions")
    subprocess.run(
        [str(VENV_BIN / "clientele"), "migrate", "interactions"],
        env={**service_env, "DATABASE_URL": url},
        check=True,
    )
    return url


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    interactions_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The interactions service as a process; its overdue worker is off (tests drive one with
    their own clock)."""
    logs = tmp_path_factory.mktemp("interactions")
    attachments = logs / "attachments"
    env = {
        **service_env,
        "DATABASE_URL": interactions_migrated,
        "ATTACHMENTS_DIR": str(attachments),
        "ATTACHMENT_MAX_BYTES": "200000",
        "OVERDUE_WORKER": "false",
        "REMINDER_LEAD_MINUTES": "30",
        "OWN_EMAIL_DOMAINS": '["ourco.example"]',
    }
    process = ServiceProcess("interactions", env, logs, VENV_BIN)
    try:
        wait_for(process.ready, 60, "interactions to be ready")
        yield Stack(
            url=process.url,
            bootstrap=infra.kafka_bootstrap_servers,
            issuer=issuer,
            database_url=interactions_migrated,
            attachments_dir=str(attachments),
            admin=bearer(issuer, "root", roles=["admin"]),
        )
    finally:
        process.stop()


@pytest.fixture
def direction() -> str:
    """A direction no other test uses, so counts and lists see only this test's data."""
    return f"d-{uuid.uuid4().hex[:10]}"
