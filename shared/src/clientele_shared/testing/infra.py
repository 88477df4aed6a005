"""Where integration tests find Kafka, PostgreSQL and Redis.

Order: addresses given in the environment; else containers through testcontainers when a Docker
engine answers; else the project's own scripts (deploy/local/infra.sh) start private instances.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ENV_KEYS = ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_URL", "REDIS_URL")


def database_for_tests(service: str) -> str:
    return os.environ.get("CLIENTELE_TEST_DATABASE_PREFIX", "clientele_test_") + service


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap_servers: str
    postgres_url: str
    """A server URL without a database name."""
    redis_url: str
    local_scripts: Path | None = None
    """The infra.sh that started the services, when it was used (lets tests restart Kafka)."""

    def database_url(self, database: str) -> str:
        return f"{self.postgres_url.rstrip('/')}/{database}"

    def test_database_url(self, service: str) -> str:
        """A service's database for tests, apart from a development stack's.

        CLIENTELE_TEST_DATABASE_PREFIX keeps two checkouts testing against one server apart.
        """
        return self.database_url(database_for_tests(service))

    def as_env(self) -> dict[str, str]:
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap_servers,
            "POSTGRES_URL": self.postgres_url,
            "REDIS_URL": self.redis_url,
        }


def _from_environment() -> Infrastructure | None:
    values = [os.environ.get(key) for key in ENV_KEYS]
    if all(values):
        kafka, postgres, redis = (str(value) for value in values)
        return Infrastructure(kafka, postgres, redis)
    return None


@contextmanager
def _containers() -> Iterator[Infrastructure]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer().with_kraft())
        postgres = stack.enter_context(PostgresContainer("postgres:16", driver=None))
        redis = stack.enter_context(RedisContainer())
        url = postgres.get_connection_url().rsplit("/", 1)[0]
        redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        yield Infrastructure(kafka.get_bootstrap_server(), url, redis_url)


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
    except Exception:
        return False
    return True


def _local(repo_root: Path) -> Infrastructure:
    script = repo_root / "deploy" / "local" / "infra.sh"
    subprocess.run([str(script), "up"], check=True)
    env_text = subprocess.run(
        [str(script), "env"], check=True, capture_output=True, text=True
    ).stdout
    values: dict[str, str] = {}
    for line in env_text.splitlines():
        if line.startswith("export ") and "=" in line:
            name, _, raw = line.removeprefix("export ").partition("=")
            parsed = shlex.split(raw)
            values[name] = parsed[0] if parsed else ""
    return Infrastructure(
        values["KAFKA_BOOTSTRAP_SERVERS"],
        values["POSTGRES_URL"],
        values["REDIS_URL"],
        local_scripts=script,
    )


@contextmanager
def infrastructure(repo_root: Path) -> Iterator[Infrastructure]:
    """Yield the infrastructure for a test session (see the module docstring for the order)."""
    given = _from_environment()
    if given is not None:
        yield given
    elif _docker_available():
        with _containers() as started:
            yield started
    else:
        yield _local(repo_root)
