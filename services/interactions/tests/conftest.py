"""Fixtures of the interactions tests: one service process per module, migrated once."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clientele_interactions.app import PUBLISHES
from clientele_interactions.settings import InteractionsSettings
from clientele_interactions.tables import metadata
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.runtime import ServiceRuntime
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from interactions_testkit import S3Bucket, Stack, bearer, s3_client
from pydantic import SecretStr

VENV_BIN = Path(sys.executable).parent
REPO_ROOT = Path(__file__).resolve().parents[3]
IMAP_SCRIPT = REPO_ROOT / "deploy" / "local" / "imap.sh"


@dataclass(frozen=True)
class ImapServer:
    """The private Dovecot of deploy/local/imap.sh: plaintext IMAP on loopback."""

    host: str
    port: int
    username: str
    password: str


def _dovecot_installed() -> bool:
    return shutil.which("dovecot") is not None or Path("/usr/sbin/dovecot").exists()


@pytest.fixture(scope="session")
def imap_server() -> ImapServer:
    """Dovecot started by ``deploy/local/imap.sh start`` (installed with apt-get when missing;
    skipped when that is impossible). Left running like the rest of the local infrastructure."""
    state = Path(os.environ.get("CLIENTELE_STATE_DIR", REPO_ROOT / ".state"))
    port = int(os.environ.get("CLIENTELE_IMAP_PORT", "11143"))
    result = subprocess.run(
        [str(IMAP_SCRIPT), "start"], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0:
        if not _dovecot_installed():
            pytest.skip(
                "no IMAP server: dovecot-imapd is not installed and apt-get could not install "
                f"it (no network?): {result.stderr.strip()[-500:]}"
            )
        raise AssertionError(f"deploy/local/imap.sh start failed:\n{result.stderr}")
    password = (state / "imap" / "password").read_text().strip()
    return ImapServer("127.0.0.1", port, "clientele", password)


@pytest.fixture(scope="session")
def interactions_migrated(infra: Infrastructure, service_env: dict[str, str]) -> str:
    url = infra.test_database_url("interactions")
    subprocess.run(
        [str(VENV_BIN / "clientele"), "migrate", "interactions"],
        env={**service_env, "DATABASE_URL": url},
        check=True,
    )
    return url


@pytest.fixture
async def runtime(
    infra: Infrastructure, interactions_migrated: str
) -> AsyncIterator[ServiceRuntime]:
    """The interactions runtime, not started: its sessions and outbox are all the service tier
    (business operations through their service functions) uses."""
    settings = InteractionsSettings(
        database_url=SecretStr(interactions_migrated),
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        redis_url=SecretStr(infra.redis_url),
    )
    runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
    try:
        yield runtime
    finally:
        await runtime.producer.stop()  # never started: this only closes it
        await runtime.redis.aclose()
        await runtime.engine.dispose()


def _service(
    infra: Infrastructure,
    service_env: dict[str, str],
    database_url: str,
    issuer: TokenIssuer,
    logs: Path,
    **extra: str,
) -> Iterator[Stack]:
    attachments = logs / "attachments"
    env = {
        **service_env,
        "DATABASE_URL": database_url,
        "ATTACHMENTS_DIR": str(attachments),
        "ATTACHMENT_MAX_BYTES": "200000",
        "OVERDUE_WORKER": "false",
        "REMINDER_LEAD_MINUTES": "30",
        "OWN_EMAIL_DOMAINS": '["ourco.example"]',
        **extra,
    }
    process = ServiceProcess("interactions", env, logs, VENV_BIN)
    try:
        wait_for(process.ready, 180, "interactions to be ready")  # a busy machine
        yield Stack(
            url=process.url,
            bootstrap=infra.kafka_bootstrap_servers,
            issuer=issuer,
            database_url=database_url,
            attachments_dir=str(attachments),
            admin=bearer(issuer, "root", roles=["admin"]),
        )
    finally:
        process.stop()


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
    yield from _service(infra, service_env, interactions_migrated, issuer, logs)


@pytest.fixture(scope="module")
def s3_bucket(infra: Infrastructure) -> S3Bucket:
    """A new bucket in the S3 store the infrastructure provides (moto locally, MinIO in a
    container, or the one given in the environment)."""
    assert infra.s3 is not None, "the test infrastructure has no S3 store"
    bucket = S3Bucket(infra.s3, f"clientele-test-{uuid.uuid4().hex[:12]}")

    async def create() -> None:
        async with s3_client(bucket.store) as client:
            await client.create_bucket(Bucket=bucket.name)

    asyncio.run(create())
    return bucket


@pytest.fixture(scope="module")
def s3_stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    interactions_migrated: str,
    issuer: TokenIssuer,
    s3_bucket: S3Bucket,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The interactions service keeping attachments in S3 (parts of 5 MiB, files up to
    12 MiB, so a large upload goes as a multipart upload)."""
    logs = tmp_path_factory.mktemp("interactions-s3")
    yield from _service(
        infra,
        service_env,
        interactions_migrated,
        issuer,
        logs,
        ATTACHMENT_STORAGE="s3",
        S3_BUCKET=s3_bucket.name,
        S3_KEY_PREFIX="attachments/",
        S3_PART_SIZE=str(5 << 20),
        ATTACHMENT_MAX_BYTES=str(12 << 20),
    )


@pytest.fixture
def direction() -> str:
    """A direction no other test uses, so counts and lists see only this test's data."""
    return f"d-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def employee(stack: Stack, direction: str) -> uuid.UUID:
    """An active employee of the test's direction, announced to the service (references to
    employees are checked: one never announced is refused)."""
    return stack.employee([direction])
