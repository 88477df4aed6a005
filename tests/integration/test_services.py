"""The services as processes: an event crosses from directory to interactions; access and input."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from clientele_shared.auth.keys import generate_rsa_key
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import DEALS, ORGANIZATIONS
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.registry import GrantError
from clientele_testkit.databases import drop_database, refuse_connections
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, free_port, wait_for

VENV_BIN = Path(sys.executable).parent

pytestmark = pytest.mark.integration

VALID_INN = "7707083893"


SCRAPER_TOKEN = "scraper-" + "x" * 24


def _bearer(issuer: TokenIssuer, **claims: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {issuer.mint(**claims)}"}  # type: ignore[arg-type]


@pytest.fixture
def services(
    start_service: Callable[..., ServiceProcess],
) -> dict[str, ServiceProcess]:
    return {
        name: start_service(name, METRICS_TOKEN=SCRAPER_TOKEN)
        for name in ("directory", "interactions")
    }


async def _find_event(bootstrap: str, topic: str, aggregate_id: str) -> Envelope:
    """Read a topic from the start, as a new group, until the aggregate's event shows up."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=10_000)
            if not batch:
                raise AssertionError(f"no event for {aggregate_id} on {topic}")
            for records in batch.values():
                for record in records:
                    if record.key == aggregate_id.encode():
                        return Envelope.from_bytes(record.value or b"")
    finally:
        await consumer.stop()


def test_organization_event_reaches_interactions_and_obeys_directions(
    services: dict[str, ServiceProcess], issuer: TokenIssuer, infra: Infrastructure
) -> None:
    north = _bearer(issuer, subject="alice", roles=["sales"], directions=["north"])
    south = _bearer(issuer, subject="bob", roles=["sales"], directions=["south"])
    created = httpx.post(
        f"{services['directory'].url}/v1/organizations",
        json={"legal_name": "ООО «Север»", "inn": VALID_INN, "directions": ["north"]},
        headers={**north, "X-Correlation-ID": "trace-1"},
    )
    assert created.status_code == 201, created.text
    assert created.headers["x-correlation-id"] == "trace-1"
    org_id = created.json()["id"]

    card_url = f"{services['interactions'].url}/v1/clients/{org_id}"
    wait_for(
        lambda: httpx.get(card_url, headers=north).status_code == 200,
        60,
        "the organization to reach interactions",
    )
    card = httpx.get(card_url, headers=north).json()
    assert card["legal_name"] == "ООО «Север»"
    assert card["inn"] == VALID_INN
    assert card["directions"] == ["north"]

    hidden = httpx.get(card_url, headers=south)
    assert hidden.status_code == 404, hidden.text
    event = asyncio.run(_find_event(infra.kafka_bootstrap_servers, ORGANIZATIONS, org_id))
    assert event.type == "directory.organization.created"
    assert event.producer == "directory"
    assert event.correlation_id == "trace-1", "the HTTP correlation id travels with the event"
    assert event.actor is not None
    assert event.actor.subject == "alice"
    assert event.directions == ("north",)

    own = f"{services['directory'].url}/v1/organizations/{org_id}"
    assert httpx.get(own, headers=south).status_code == 404
    assert httpx.get(own, headers=north).headers["etag"] == 'W/"1"'
    listed = httpx.get(f"{services['directory'].url}/v1/organizations", headers=south).json()
    assert org_id not in {org["id"] for org in listed}


def test_bad_input_is_a_problem_and_writes_nothing(
    services: dict[str, ServiceProcess], issuer: TokenIssuer
) -> None:
    admin = _bearer(issuer, subject="root", roles=["admin"])
    url = f"{services['directory'].url}/v1/organizations"
    before = len(httpx.get(url, headers=admin, params={"limit": 500}).json())
    bad_inn = httpx.post(
        url, json={"legal_name": "X", "inn": "7707083894", "directions": ["north"]}, headers=admin
    )
    assert bad_inn.status_code == 422
    assert bad_inn.headers["content-type"] == "application/problem+json"
    assert "checksum" in bad_inn.text
    unknown_status = httpx.post(
        url, json={"legal_name": "X", "status": "friend", "directions": ["north"]}, headers=admin
    )
    assert unknown_status.status_code == 422
    huge = httpx.post(
        url,
        content=b'{"legal_name": "' + b"x" * 2_000_000 + b'"}',
        headers={**admin, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    assert len(httpx.get(url, headers=admin, params={"limit": 500}).json()) == before


def test_writing_outside_ones_directions_is_forbidden(
    services: dict[str, ServiceProcess], issuer: TokenIssuer
) -> None:
    north = _bearer(issuer, subject="alice", roles=["sales"], directions=["north"])
    response = httpx.post(
        f"{services['directory'].url}/v1/organizations",
        json={"legal_name": "ООО «Юг»", "directions": ["south"]},
        headers=north,
    )
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "claims",
    [
        {"subject": "eve", "ttl_seconds": 1, "now": 1_000_000},
        {"subject": "eve", "audience": "someone-else"},
    ],
    ids=["expired", "wrong-audience"],
)
def test_refused_tokens_get_401(
    services: dict[str, ServiceProcess], issuer: TokenIssuer, claims: dict[str, object]
) -> None:
    response = httpx.get(
        f"{services['directory'].url}/v1/organizations", headers=_bearer(issuer, **claims)
    )
    assert response.status_code == 401
    assert "invalid_token" in response.headers["www-authenticate"]


def test_forged_and_missing_tokens_get_401(services: dict[str, ServiceProcess]) -> None:

    other = TokenIssuer(generate_rsa_key())
    url = f"{services['interactions'].url}/v1/clients/00000000-0000-0000-0000-000000000000"
    assert httpx.get(url, headers=_bearer(other, subject="eve", roles=["admin"])).status_code == 401
    assert httpx.get(url).status_code == 401


def test_health_checks_every_dependency(
    services: dict[str, ServiceProcess], issuer: TokenIssuer
) -> None:
    body = httpx.get(f"{services['interactions'].url}/health/ready").json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": "ok"}  # readiness: can it serve HTTP
    detail = body["detail"]
    assert (detail["kafka"], detail["redis"], detail["outbox_relay"]) == ("ok", "ok", "ok")
    assert set(detail["consumers"].values()) == {"ok"}
    assert set(detail["background_tasks"].values()) == {"running"}
    url = f"{services['interactions'].url}/metrics"
    assert httpx.get(url).status_code == 401
    sales = _bearer(issuer, subject="alice", roles=["sales"], directions=["north"])
    assert httpx.get(url, headers=sales).status_code == 403
    wrong = httpx.get(url, headers={"Authorization": "Bearer scraper-wrong"})
    assert wrong.status_code == 401
    admin = _bearer(issuer, subject="root", roles=["admin"])
    assert "clientele_outbox_backlog" in httpx.get(url, headers=admin).text
    metrics = httpx.get(url, headers={"Authorization": f"Bearer {SCRAPER_TOKEN}"}).text
    assert "clientele_outbox_backlog" in metrics
    assert 'clientele_component_up{component="kafka",service="interactions"} 1.0' in metrics


def test_service_wired_outside_its_grant_fails_at_startup(service_env: dict[str, str]) -> None:
    from clientele_directory.settings import DirectorySettings
    from clientele_directory.tables import metadata
    from clientele_shared.runtime import ServiceRuntime

    settings = DirectorySettings(postgres_url=service_env["POSTGRES_URL"])  # type: ignore[arg-type]
    with pytest.raises(GrantError, match="may not publish"):
        ServiceRuntime(settings, metadata, publishes=[DEALS])


def _admin(infra: Infrastructure, *statements: str) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(infra.database_url("postgres"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_database_outage_answers_503_with_retry_after_and_readiness_503(
    infra: Infrastructure,
    service_env: dict[str, str],
    tmp_path: Path,
    issuer: TokenIssuer,
) -> None:
    database = f"clientele_test_outage_{uuid.uuid4().hex[:8]}"
    url = infra.database_url(database)
    _admin(infra, f'CREATE DATABASE "{database}"')
    service: ServiceProcess | None = None
    try:
        env = {**service_env, "DATABASE_URL": url}
        subprocess.run([str(VENV_BIN / "clientele"), "migrate", "directory"], env=env, check=True)
        service = ServiceProcess("directory", env, tmp_path, VENV_BIN)
        wait_for(service.ready, 60, "directory to be ready")
        headers = _bearer(issuer, subject="alice", roles=["sales"], directions=["north"])
        orgs = f"{service.url}/v1/organizations"
        assert httpx.get(orgs, headers=headers).status_code == 200

        asyncio.run(refuse_connections(infra.postgres_url, database, True))
        outage = httpx.get(orgs, headers={**headers, "X-Correlation-ID": "outage-1"})
        assert outage.status_code == 503, outage.text
        assert outage.headers["content-type"] == "application/problem+json"
        assert outage.headers["retry-after"] == "5"
        assert outage.json()["correlation_id"] == "outage-1"
        ready = httpx.get(f"{service.url}/health/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"].startswith("failed")

        asyncio.run(refuse_connections(infra.postgres_url, database, False))
        wait_for(service.ready, 30, "directory to be ready again")
        assert httpx.get(orgs, headers=headers).status_code == 200
    finally:
        if service is not None:
            service.stop()
        asyncio.run(drop_database(infra.postgres_url, database))


GIVE_UP_APP = """
import os, sys
import uvicorn
from pydantic import SecretStr
from sqlalchemy import MetaData
from clientele_shared.events.tables import inbox_table, outbox_table
from clientele_shared.runtime import ServiceRuntime, create_service_app
from clientele_shared.settings import ServiceSettings
from clientele_testkit import probe


def create_app():
    metadata = MetaData()
    outbox_table(metadata)
    inbox_table(metadata)
    settings = ServiceSettings(
        service_name=probe.PRODUCER, database_url=SecretStr(os.environ["DATABASE_URL"])
    )
    runtime = ServiceRuntime(
        settings, metadata, publishes=["t.give-up"], registry=probe.registry("t.give-up")
    )
    runtime.supervisor.initial_backoff = 0.01
    runtime.supervisor.give_up_after = 3

    async def broken() -> None:
        raise RuntimeError("broken for good")

    runtime.add_background_task("broken", broken)
    return create_service_app(runtime, title="t", description="t", routers=[])


uvicorn.run(create_app, factory=True, host="127.0.0.1", port=int(sys.argv[1]), log_config=None)
"""


def test_a_process_whose_background_task_cannot_be_restarted_exits_non_zero(
    infra: Infrastructure, service_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "give_up_app.py"
    script.write_text(GIVE_UP_APP)
    result = subprocess.run(
        [sys.executable, str(script), str(free_port())],
        env={**service_env, "DATABASE_URL": infra.database_url("clientele_test")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout[-3000:]
    assert result.stdout.count('"background task failed"') == 3
    assert "background task gave up" in result.stdout
