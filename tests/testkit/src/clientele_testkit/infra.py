"""Where integration tests find Kafka, PostgreSQL, Redis and an S3-compatible store.

Order: addresses given in the environment; else containers through testcontainers when a Docker
engine answers; else the project's own scripts (deploy/local/infra.sh) start private instances:
the test instance (`use_test_instance`: state in .state/test, ports of its own), so that tests
never share a broker, consumer groups or databases with a stack started by `make up`.
The S3 store follows the same order on its own (S3_ENDPOINT_URL with S3_ACCESS_KEY_ID and
S3_SECRET_ACCESS_KEY; a MinIO container; deploy/local/s3.sh), so giving the other three does not
require giving it too.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

ENV_KEYS = ("KAFKA_BOOTSTRAP_SERVERS", "POSTGRES_URL", "REDIS_URL")
TEST_INSTANCE_PORTS = {
    "CLIENTELE_KAFKA_PORT": "19192",
    "CLIENTELE_KAFKA_CONTROLLER_PORT": "19193",
    "CLIENTELE_PG_PORT": "15532",
    "CLIENTELE_REDIS_PORT": "16479",
    "CLIENTELE_S3_PORT": "19100",
    "CLIENTELE_IMAP_PORT": "11243",
}
"""The local test instance's ports: the development stack's (deploy/local/lib.sh) plus 100."""


def use_test_instance(repo_root: Path) -> None:
    """Point the local scripts at the test instance unless an instance was chosen.

    Without CLIENTELE_STATE_DIR, tests use the state dir .state/test and TEST_INSTANCE_PORTS
    (each CLIENTELE_*_PORT given still wins); set once for the session, so every fixture and
    script (infra.sh, s3.sh, imap.sh, a Kafka restart) works on that same instance.
    """
    if os.environ.get("CLIENTELE_STATE_DIR"):
        return
    os.environ["CLIENTELE_STATE_DIR"] = str(repo_root / ".state" / "test")
    for name, port in TEST_INSTANCE_PORTS.items():
        os.environ.setdefault(name, port)


S3_ENV_KEYS = ("S3_ENDPOINT_URL", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY")


def database_for_tests(service: str) -> str:
    return os.environ.get("CLIENTELE_TEST_DATABASE_PREFIX", "clientele_test_") + service


@dataclass(frozen=True)
class S3Store:
    """An S3-compatible object store and a key pair it accepts."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str

    def as_env(self) -> dict[str, str]:
        return dict(
            zip(
                S3_ENV_KEYS,
                (self.endpoint_url, self.access_key_id, self.secret_access_key),
                strict=True,
            )
        )


@dataclass(frozen=True)
class Infrastructure:
    kafka_bootstrap_servers: str
    postgres_url: str
    """A server URL without a database name."""
    redis_url: str
    local_scripts: Path | None = None
    """The infra.sh that started the services, when it was used (lets tests restart Kafka)."""
    s3: S3Store | None = None

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
            **(self.s3.as_env() if self.s3 else {}),
        }


def _from_environment() -> Infrastructure | None:
    values = [os.environ.get(key) for key in ENV_KEYS]
    if all(values):
        kafka, postgres, redis = (str(value) for value in values)
        return Infrastructure(kafka, postgres, redis)
    return None


def _s3_from(values: Mapping[str, str]) -> S3Store | None:
    if not values.get("S3_ENDPOINT_URL"):
        return None
    url, key, secret = (values.get(name, "") for name in S3_ENV_KEYS)
    return S3Store(url, key, secret)


@contextmanager
def _s3_container() -> Iterator[S3Store]:
    from testcontainers.minio import MinioContainer

    with MinioContainer() as minio:
        config = minio.get_config()
        yield S3Store(f"http://{config['endpoint']}", config["access_key"], config["secret_key"])


def _s3_local(repo_root: Path) -> S3Store:
    script = repo_root / "deploy" / "local" / "s3.sh"
    subprocess.run([str(script), "start"], check=True)
    url = subprocess.run([str(script), "url"], check=True, capture_output=True, text=True)
    state = Path(os.environ.get("CLIENTELE_STATE_DIR", repo_root / ".state"))
    return S3Store(url.stdout.strip(), "clientele", (state / "s3" / "secret").read_text().strip())


@contextmanager
def _containers() -> Iterator[Infrastructure]:
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    with ExitStack() as stack:
        kafka = stack.enter_context(KafkaContainer().with_kraft())
        postgres = stack.enter_context(PostgresContainer("postgres:16", driver=None))
        redis = stack.enter_context(RedisContainer())
        s3 = stack.enter_context(_s3_container())
        url = postgres.get_connection_url().rsplit("/", 1)[0]
        redis_url = f"redis://{redis.get_container_host_ip()}:{redis.get_exposed_port(6379)}/0"
        yield Infrastructure(kafka.get_bootstrap_server(), url, redis_url, s3=s3)


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
        s3=_s3_from(values) or _s3_local(repo_root),
    )


@contextmanager
def infrastructure(repo_root: Path) -> Iterator[Infrastructure]:
    """Yield the infrastructure for a test session (see the module docstring for the order)."""
    given = _from_environment()
    if given is not None:
        s3 = _s3_from(os.environ)
        if s3 is not None:
            yield replace(given, s3=s3)
        elif _docker_available():
            with _s3_container() as started_s3:
                yield replace(given, s3=started_s3)
        else:
            yield replace(given, s3=_s3_local(repo_root))
    elif _docker_available():
        with _containers() as started:
            yield started
    else:
        yield _local(repo_root)
