"""One service's runtime: connections, outbox relay, consumers, and the FastAPI app around them."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hmac
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from sqlalchemy import MetaData

from clientele_shared.auth.dependencies import ForbiddenError, current_principal, install_auth
from clientele_shared.auth.principal import Role
from clientele_shared.auth.tokens import TokenVerifier
from clientele_shared.db import create_engine, ping, sessionmaker
from clientele_shared.events.admin import ensure_topics, topics_of
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.feeds import DirectionFeeds
from clientele_shared.events.inbox import EventConsumer, InboxPruner, RetryPolicy
from clientele_shared.events.outbox import Outbox, OutboxRelay
from clientele_shared.events.producer import create_producer
from clientele_shared.events.registry import Registry, Topic
from clientele_shared.http.idempotency import IdempotencyKeys
from clientele_shared.http.middleware import BodySizeLimit, CorrelationAndMetrics
from clientele_shared.http.problems import document_problems, install_problem_handlers
from clientele_shared.http.textguard import TextGuard
from clientele_shared.memory import tune_garbage_collector
from clientele_shared.observability import (
    COMPONENT_UP,
    OUTBOX_BACKLOG,
    configure_logging,
    get_logger,
)
from clientele_shared.settings import ServiceSettings
from clientele_shared.supervision import Supervisor

log = get_logger(__name__)


class ServiceRuntime:
    """Everything a service connects to, started and stopped by its app's lifespan."""

    def __init__(
        self,
        settings: ServiceSettings,
        metadata: MetaData,
        *,
        publishes: Sequence[str] = (),
        registry: Registry = REGISTRY,
    ) -> None:
        self.settings = settings
        self.service = settings.service_name
        self.registry = registry
        self.publishes = tuple(publishes)
        registry.check_grants(self.service, publishes=self.publishes)
        self.outbox_table = metadata.tables["outbox"]
        self.inbox_table = metadata.tables["inbox"]
        # Every connection is kept (no overflow): an overflow connection is closed as soon as it
        # comes back, and under a steady load of more requests than the pool holds each new one
        # costs a TCP and SCRAM handshake (a dozen a second at 32 concurrent reads).
        self.engine = create_engine(
            settings.resolved_database_url(), pool_size=settings.database_pool_size, max_overflow=0
        )
        self.sessions = sessionmaker(self.engine)
        self.redis: Redis = Redis.from_url(settings.redis_url.get_secret_value())
        security = settings.kafka_security()
        self.producer = create_producer(
            settings.kafka_bootstrap_servers,
            client_id=f"{self.service}-relay",
            **security.client_options(),
        )
        # its own producer: a renewal (ADR 76) never falls in the middle of a relay's batch
        self.dead_letters = create_producer(
            settings.kafka_bootstrap_servers,
            client_id=f"{self.service}-dead-letters",
            **security.client_options(),
        )
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=self.service,
            enable_idempotence=True,
            acks="all",
            security=security.faststream(),
            logger=None,
        )
        self.consumer = EventConsumer(
            self.service,
            self.broker,
            self.sessions,
            self.inbox_table,
            registry,
            self.dead_letters,
            retry=RetryPolicy(
                max_attempts=settings.consumer_max_attempts,
                initial_backoff=settings.consumer_initial_backoff,
            ),
            batch_size=settings.consumer_batch_size,
        )
        self.relay = OutboxRelay(
            self.service,
            self.engine,
            self.outbox_table,
            self.producer,
            batch_size=settings.outbox_batch_size,
            poll_interval=settings.outbox_poll_interval,
            linger=settings.outbox_linger,
            feeds=DirectionFeeds(registry, self._ensure) if settings.direction_feeds else None,
        )
        # Commits wake this process's relay; NOTIFY only where no relay runs (ADR 17).
        wake = self.relay.wake if settings.run_relay and self.publishes else None
        self.outbox = Outbox(self.service, registry, self.outbox_table, wake=wake)
        self.inbox_pruner = InboxPruner(
            self.service,
            self.engine,
            self.inbox_table,
            retention=dt.timedelta(hours=settings.inbox_retention_hours),
            interval=settings.inbox_prune_interval,
        )
        self.supervisor = Supervisor(self.service, on_give_up=self._give_up)
        self.gave_up: str | None = None
        """The background task that failed too often to be restarted, if any."""
        self._background: list[tuple[str, Callable[[], Awaitable[None]]]] = []
        self._broker_started = False
        self.consumer_watch_interval = 5.0

    def add_background_task(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` from start() until stop(), supervised: restarted with back-off if it
        fails (a service's own worker loops)."""
        self._background.append((name, run))

    @property
    def consuming(self) -> bool:
        return self.settings.run_consumers and bool(self.consumer.subscriptions)

    @property
    def relaying(self) -> bool:
        return self.settings.run_relay and bool(self.publishes)

    async def start(self) -> None:
        await self.ensure_topics()
        await self.producer.start()
        if self.consuming:
            await self.dead_letters.start()
            self.supervisor.start("consumers", self._run_consumers)
            self.supervisor.start("inbox-pruner", self.inbox_pruner.run)
        if self.relaying:
            self.supervisor.start("outbox-relay", self.relay.run)
        for name, run in self._background:
            self.supervisor.start(name, run)
        log.info(
            "service started",
            publishes=list(self.publishes),
            consumes=[topic for topic, _ in self.consumer.subscriptions],
        )

    async def _run_consumers(self) -> None:
        """Start the broker's subscribers, then fail if one's consume loop is gone for good.

        FastStream restarts a consume loop that raised; this notices one that stopped, and the
        supervisor then starts the broker again.
        """
        if self._broker_started:  # a previous run failed: start afresh
            self._broker_started = False
            await self.broker.stop()
        await self.broker.start()
        self._broker_started = True
        while True:
            await asyncio.sleep(self.consumer_watch_interval)
            for subscriber in self.broker.subscribers:
                tasks: list[asyncio.Task[Any]] = getattr(subscriber, "tasks", [])
                if not any(not task.done() for task in tasks):
                    raise RuntimeError(f"the consume loop of {subscriber} stopped")

    def _give_up(self, task: str) -> None:
        """A background task cannot be restarted: stop the server; the process then exits 1."""
        self.gave_up = task
        os.kill(os.getpid(), signal.SIGTERM)

    async def ensure_topics(self) -> None:
        """Create the topics this service publishes and consumes, when missing (ADR 18)."""
        consumes = [topic for topic, _ in self.consumer.subscriptions]
        await self._ensure(topics_of(self.registry, publishes=self.publishes, consumes=consumes))

    async def _ensure(self, topics: Iterable[Topic]) -> list[str]:
        return await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            topics,
            replication_factor=self.settings.kafka_topic_replicas,
            **self.settings.kafka_security().client_options(),
        )

    async def stop(self) -> None:
        await self.supervisor.stop()
        await self.relay.close()
        await self.broker.stop()
        await self.producer.stop()
        await self.dead_letters.stop()
        await self.redis.aclose()
        await self.engine.dispose()

    async def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the service can serve HTTP (its database answers), and the detail.

        Kafka, Redis, the relay, the consumers and the background tasks are reported in the
        detail and in `clientele_component_up`, but do not make the service unready: the outbox
        lets writes go on while Kafka is away, and taking every pod out of the load balancer
        for a broker blip would turn it into an outage.
        """

        async def kafka() -> None:
            await self.producer.client.fetch_all_metadata()

        async def redis() -> None:
            await self.redis.ping()

        async def check(name: str, probe: Awaitable[object]) -> str:
            try:
                await asyncio.wait_for(probe, timeout=2.0)
            except Exception as exc:
                result = f"failed: {type(exc).__name__}"
            else:
                result = "ok"
            COMPONENT_UP.labels(self.service, name).set(result == "ok")
            return result

        database, kafka_result, redis_result = await asyncio.gather(
            check("database", ping(self.engine)), check("kafka", kafka()), check("redis", redis())
        )
        detail: dict[str, Any] = {"kafka": kafka_result, "redis": redis_result}
        if self.relaying:
            detail["outbox_relay"] = relay = self.relay.health()
            COMPONENT_UP.labels(self.service, "outbox-relay").set(relay == "ok")
        if self.publishes and database == "ok":
            with contextlib.suppress(Exception):
                backlog = await asyncio.wait_for(self.relay.backlog(), timeout=2.0)
                OUTBOX_BACKLOG.labels(self.service).set(backlog)
                detail["outbox_backlog"] = backlog
        if self.consuming:
            detail["consumers"] = consumers = self.consumer.health()
            for group, status in consumers.items():
                COMPONENT_UP.labels(self.service, f"consumer:{group}").set(status == "ok")
        detail["background_tasks"] = self.supervisor.health()
        ready = database == "ok"
        return ready, {
            "status": "ok" if ready else "unavailable",
            "checks": {"database": database},
            "detail": detail,
        }


async def _metrics_reader(request: Request, settings: ServiceSettings) -> None:
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    expected = settings.metrics_token
    if (
        expected is not None
        and scheme.lower() == "bearer"
        and hmac.compare_digest(token.strip().encode(), expected.get_secret_value().encode())
    ):
        return
    principal = await current_principal(request)
    if not (principal.is_service or principal.has_role(Role.ADMIN)):
        raise ForbiddenError("Metrics are for the scraper, administrators and services.")


def _operations_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        """Ready to serve HTTP: the database answers (503 if not); the rest is detail."""
        healthy, body = await runtime.health()
        return JSONResponse(body, status_code=200 if healthy else 503)

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        """Prometheus metrics, for the scraper's `METRICS_TOKEN` or an admin's or a service's
        token: they name routes, consumers and volumes nobody else needs to see."""
        await _metrics_reader(request, runtime.settings)
        await runtime.health()  # refreshes the component gauges
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router


def create_service_app(
    runtime: ServiceRuntime,
    *,
    title: str,
    description: str,
    routers: Iterable[APIRouter],
    verifier: TokenVerifier | None = None,
    upload_limits: Mapping[str, int] | None = None,
) -> FastAPI:
    """The one way a service's FastAPI app is assembled.

    `upload_limits` maps path patterns (regular expressions) to body limits above
    MAX_REQUEST_BYTES, for the few endpoints that take files.
    """
    settings = runtime.settings
    configure_logging(runtime.service, settings.log_level, json=settings.log_json)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        await runtime.start()
        tune_garbage_collector(settings.gc_young_threshold)
        try:
            yield {}
        finally:
            await runtime.stop()
            if runtime.gave_up is not None:
                log.critical("exiting: a background task gave up", task=runtime.gave_up)
                sys.stdout.flush()
                os._exit(1)  # uvicorn would exit 0; Kubernetes should see a failure

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)
    verifier = verifier or TokenVerifier(settings.auth)
    install_auth(app, verifier)
    app.add_middleware(TextGuard)  # innermost: reads a body BodySizeLimit has already bounded
    # Inside the size limit: it sees the body BodySizeLimit let through, logs with the
    # correlation id, and checks callers with the app's own verifier (ADR 22).
    app.add_middleware(
        IdempotencyKeys,
        service=runtime.service,
        redis=runtime.redis,
        verify=verifier.verify,
        ttl_seconds=settings.idempotency_ttl_seconds,
        max_response_bytes=settings.idempotency_max_response_bytes,
    )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes, larger=upload_limits)
    app.add_middleware(CorrelationAndMetrics, service=runtime.service)
    app.include_router(_operations_router(runtime))
    for router in routers:
        app.include_router(router)
    document_problems(app)
    return app


async def runtime_of(request: Request) -> ServiceRuntime:
    """The runtime of the app serving a request (a FastAPI dependency; async, so FastAPI does
    not hand it to a worker thread)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime


CurrentRuntime = Annotated[ServiceRuntime, Depends(runtime_of)]
"""Route parameter type for the runtime of the app serving the request."""
