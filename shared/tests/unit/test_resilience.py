"""Failures: what counts as an outage, how HTTP answers it, readiness, supervised tasks."""

from __future__ import annotations

import asyncio
import errno
from collections.abc import AsyncIterator

import httpx
import pytest
import redis.exceptions
from clientele_shared.events.tables import inbox_table, outbox_table
from clientele_shared.failures import is_unavailable
from clientele_shared.http.middleware import CorrelationAndMetrics
from clientele_shared.http.problems import install_problem_handlers
from clientele_shared.observability import BACKGROUND_TASK_FAILURES, COMPONENT_UP
from clientele_shared.runtime import ServiceRuntime, _operations_router
from clientele_shared.settings import ServiceSettings
from clientele_shared.supervision import Supervisor
from clientele_testkit import probe
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import free_port
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import MetaData
from sqlalchemy import exc as sa


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def _wrapped(sqlstate: str, *, invalidated: bool = False) -> sa.DBAPIError:
    return sa.DBAPIError("SELECT 1", None, _PgError(sqlstate), connection_invalidated=invalidated)


@pytest.mark.parametrize(
    ("exc", "unavailable"),
    [
        (_wrapped("53300"), True),  # too many connections
        (_wrapped("57P01"), True),  # terminating connection due to administrator command
        (_wrapped("57P03"), True),  # the database system is shutting down / starting up
        (_wrapped("08006"), True),  # connection failure
        (_wrapped("XX000", invalidated=True), True),
        (ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed"), True),
        (OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432)"), True),
        (sa.TimeoutError("QueuePool limit reached"), True),
        (redis.exceptions.ConnectionError("Connection refused"), True),
        (httpx.ConnectError("All connection attempts failed"), True),
        (_wrapped("22000"), False),  # invalid input for a bound value (asyncpg DataError)
        (_wrapped("22012"), False),  # division by zero
        (_wrapped("23505"), False),  # unique violation
        (_wrapped("57014"), False),  # statement timeout: a poison event can cause it each time
        (sa.InterfaceError("SELECT $1", None, Exception("the server expects 1 argument")), False),
        (FileNotFoundError(errno.ENOENT, "No such file"), False),
        (ValueError("bug"), False),
    ],
)
def test_failures_are_classified_by_what_failed(exc: BaseException, unavailable: bool) -> None:
    assert is_unavailable(exc) is unavailable


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(CorrelationAndMetrics, service="test")

    @app.get("/outage")
    async def outage() -> None:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")

    @app.get("/too-many")
    async def too_many() -> None:
        raise _wrapped("53300")

    @app.get("/bug")
    async def bug() -> None:
        raise RuntimeError("a bug")

    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t")


async def test_a_database_outage_answers_503_problem_with_retry_after(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/outage", "/too-many"):
        response = await client.get(path, headers={"X-Correlation-ID": "c-1"})
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["retry-after"] == "5"
        assert response.headers["x-correlation-id"] == "c-1"
        assert response.json()["correlation_id"] == "c-1"


async def test_an_unhandled_error_is_a_problem_500_with_the_correlation_id(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/bug", headers={"X-Correlation-ID": "c-2"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 500
    assert body["correlation_id"] == "c-2"
    assert "a bug" not in response.text  # no internals to the client


def _runtime(database_url: str) -> ServiceRuntime:
    settings = ServiceSettings(
        service_name=probe.PRODUCER,
        database_url=SecretStr(database_url),
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}",  # nothing listens
        redis_url=SecretStr(f"redis://127.0.0.1:{free_port()}/0"),
    )
    metadata = MetaData()
    outbox_table(metadata)
    inbox_table(metadata)
    return ServiceRuntime(
        settings, metadata, publishes=["test.readiness"], registry=probe.registry("test.readiness")
    )


@pytest.fixture
async def health_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    runtime = _runtime(request.param)
    app = FastAPI()
    app.include_router(_operations_router(runtime))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        yield client
    await runtime.stop()


@pytest.mark.parametrize(
    "health_client", [f"postgresql://u:p@127.0.0.1:{free_port()}/none"], indirect=True
)
async def test_readiness_is_503_when_the_database_is_down(
    health_client: httpx.AsyncClient,
) -> None:
    response = await health_client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("failed")


@pytest.mark.integration
async def test_readiness_needs_only_the_database_kafka_and_redis_are_detail(
    infra: Infrastructure,
) -> None:
    runtime = _runtime(infra.database_url("clientele_test"))
    try:
        ready, body = await runtime.health()
    finally:
        await runtime.stop()
    assert ready, body
    assert body["checks"] == {"database": "ok"}
    assert body["detail"]["kafka"].startswith("failed")
    assert body["detail"]["redis"].startswith("failed")
    assert COMPONENT_UP.labels(probe.PRODUCER, "kafka")._value.get() == 0
    assert COMPONENT_UP.labels(probe.PRODUCER, "database")._value.get() == 1


async def test_a_background_task_that_raises_is_restarted_and_visible() -> None:
    runs = 0
    second_run = asyncio.Event()

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("boom")
        second_run.set()
        await asyncio.Event().wait()

    failures = BACKGROUND_TASK_FAILURES.labels("svc", "flaky")
    before = failures._value.get()
    supervisor = Supervisor("svc", on_give_up=lambda _: None, initial_backoff=0.01)
    supervisor.start("flaky", flaky)
    await asyncio.wait_for(second_run.wait(), 5)
    assert supervisor.health() == {"flaky": "running"}
    assert failures._value.get() == before + 1
    assert COMPONENT_UP.labels("svc", "flaky")._value.get() == 1
    await supervisor.stop()


async def test_a_task_failing_again_and_again_gives_up_and_says_so() -> None:
    gave_up: list[str] = []

    async def broken() -> None:
        raise RuntimeError("always")

    supervisor = Supervisor(
        "svc", on_give_up=gave_up.append, initial_backoff=0.001, give_up_after=3
    )
    supervisor.start("broken", broken)
    for _ in range(200):
        if gave_up:
            break
        await asyncio.sleep(0.01)
    assert gave_up == ["broken"]
    assert supervisor.health()["broken"].startswith("gave up after 3 failures")
    assert COMPONENT_UP.labels("svc", "broken")._value.get() == 0
    await supervisor.stop()


async def test_an_outage_is_waited_out_without_giving_up() -> None:
    runs = 0
    gave_up: list[str] = []

    async def waits_for_the_database() -> None:
        nonlocal runs
        runs += 1
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")

    supervisor = Supervisor(
        "svc",
        on_give_up=gave_up.append,
        initial_backoff=0.001,
        max_backoff=0.001,
        give_up_after=3,
    )
    supervisor.start("db", waits_for_the_database)
    for _ in range(200):
        if runs > 10:
            break
        await asyncio.sleep(0.01)
    assert runs > 10
    assert gave_up == []
    await supervisor.stop()


class _StubBroker:
    """A broker whose one subscriber's consume loop has ended."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.subscribers: list[object] = []

    async def start(self) -> None:
        self.calls.append("start")
        loop = asyncio.get_running_loop().create_future()
        loop.set_result(None)
        subscriber = type("Subscriber", (), {"tasks": [loop]})()
        self.subscribers = [subscriber]

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_a_stopped_consume_loop_fails_the_consumers_task_and_the_broker_restarts() -> None:
    runtime = _runtime(f"postgresql://u:p@127.0.0.1:{free_port()}/none")
    broker = _StubBroker()
    runtime.broker = broker  # type: ignore[assignment]
    runtime.consumer_watch_interval = 0.01
    with pytest.raises(RuntimeError, match="consume loop"):
        await runtime._run_consumers()
    with pytest.raises(RuntimeError, match="consume loop"):
        await runtime._run_consumers()
    assert broker.calls == ["start", "stop", "start"]
    await runtime.stop()
