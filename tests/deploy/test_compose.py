"""deploy/compose/compose.yaml: valid by the Compose Specification's JSON Schema, and in step with
the code (every service and its migration, the settings it reads, the local broker's version).

No Docker engine runs here, so the file is checked, not run: against the schema (committed in
deploy/compose/schema with its NOTICE) and against what the services actually read."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from clientele_shared.events.topics import SERVICES
from clientele_shared.settings import ServiceSettings
from jsonschema import Draft7Validator

COMPOSE = Path(__file__).parents[2] / "deploy" / "compose"
LOCAL_KAFKA_POM = Path(__file__).parents[2] / "deploy" / "local" / "kafka" / "pom.xml"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((COMPOSE / "compose.yaml").read_text())
    return loaded


def _settings_class(service: str) -> type[ServiceSettings]:
    module = importlib.import_module(f"clientele_{service}.settings")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value.model_fields["service_name"].default == service
        ):
            return value
    raise AssertionError(f"no settings class for {service}")


def _known_variables(service: str) -> set[str]:
    fields = _settings_class(service).model_fields
    auth = fields["auth"].annotation
    assert auth is not None
    prefix = auth.model_config.get("env_prefix", "")
    return {name.upper() for name in fields} | {
        (prefix + name).upper() for name in auth.model_fields
    }


def test_the_file_is_valid_by_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads((COMPOSE / "schema" / "compose-spec.json").read_text())
    errors = sorted(Draft7Validator(schema).iter_errors(compose), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_the_schema_check_catches_a_broken_file(compose: dict[str, Any]) -> None:
    schema = json.loads((COMPOSE / "schema" / "compose-spec.json").read_text())
    broken = {**compose, "services": {**compose["services"], "redis": {"restart": 3}}}
    assert list(Draft7Validator(schema).iter_errors(broken))


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_migrated_then_served_with_what_it_reads(
    compose: dict[str, Any], service: str
) -> None:
    services = compose["services"]
    migrate, serve = services[f"{service}-migrate"], services[service]
    assert migrate["command"] == ["migrate", service]
    assert serve["command"] == ["serve", service]
    assert serve["depends_on"][f"{service}-migrate"] == {
        "condition": "service_completed_successfully"
    }
    known = _known_variables(service)
    environment = serve["environment"]
    assert set(environment) <= known, set(environment) - known
    for needed in ("POSTGRES_URL", "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL", "AUTH_PUBLIC_KEY_FILE"):
        assert needed in environment
    assert set(migrate["environment"]) <= known


def test_no_secret_is_written_in_the_file() -> None:
    text = (COMPOSE / "compose.yaml").read_text()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD", "S3_SECRET_ACCESS_KEY"):
        assert re.findall(rf"\${{{secret}[:}}]", text), secret
        assert not re.search(rf"{secret}: (?!\$)", text), f"{secret} has a literal value"
    assert "POSTGRES_PASSWORD=" in (COMPOSE / ".env.example").read_text()


def test_the_broker_is_the_version_the_local_scripts_run(compose: dict[str, Any]) -> None:
    local = re.search(r"<kafka.version>([^<]+)</kafka.version>", LOCAL_KAFKA_POM.read_text())
    assert local is not None
    assert compose["services"]["kafka"]["image"] == f"apache/kafka:{local.group(1)}"
    environment = compose["services"]["kafka"]["environment"]
    assert (
        environment["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    )  # topics come from the registry


def test_every_database_a_service_uses_is_created() -> None:
    created = set(
        re.findall(r"CREATE DATABASE (\w+);", (COMPOSE / "initdb" / "10-databases.sql").read_text())
    )
    assert created == {f"clientele_{service}" for service in SERVICES}
