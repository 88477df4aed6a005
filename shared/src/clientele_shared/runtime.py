"""One service's runtime: connections, outbox relay, consumers, and the FastAPI app around them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from faststream.kafka import KafkaBroker
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from redis.asyncio import Redis
from sqlalchemy import MetaData

from clientele_shared.auth.dependencies import install_auth
from clientele_shared.auth.tokens import TokenVerifier
from clientele_shared.db import create_engine, ping, sessionmaker
from clientele_shared.events.admin import ensure_topics, topics_of
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.inbox import EventConsumer, RetryPolicy
from clientele_shared.events.outbox import Outbox, OutboxRelay, create_producer
from clientele_shared.events.registry import Registry
from clientele_shared.http.middleware import BodySizeLimit, CorrelationAndMetrics
from clientele_shared.http.problems import install_problem_handlers
from clientele_shared.memory import tune_garbage_collector
from clientele_shared.observability import OUTBOX_BACKLOG, configure_logging, get_logger
from clientele_shared.settings import ServiceSettings

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
        self.broker = KafkaBroker(
            settings.kafka_bootstrap_servers,
            client_id=self.service,
            enable_idempotence=True,
            acks="all",
            security=security.faststream(),
            logger=None,
        )
        self.outbox = Outbox(self.service, registry, self.outbox_table)
        self.consumer = EventConsumer(
            self.service,
            self.broker,
            self.sessions,
            self.inbox_table,
            registry,
            self.producer,
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
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._background: list[tuple[str, Callable[[], Awaitable[None]]]] = []

    def add_background_task(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        """Run ``run()`` as a task from start() until stop() (a service's own worker loops)."""
        self._background.append((name, run))

    async def start(self) -> None:
        await self.ensure_topics()
        await self.producer.start()
        if self.settings.run_consumers and self.consumer.subscriptions:
            await self.broker.start()
        if self.settings.run_relay and self.publishes:
            self._tasks.append(asyncio.create_task(self.relay.run(), name="outbox-relay"))
        for name, run in self._background:
            self._tasks.append(asyncio.create_task(_as_coroutine(run), name=name))
        log.info(
            "service started",
            publishes=list(self.publishes),
            consumes=[topic for topic, _ in self.consumer.subscriptions],
        )

    async def ensure_topics(self) -> None:
        """Create the topics this service publishes and consumes, when missing (ADR 18)."""
        consumes = [topic for topic, _ in self.consumer.subscriptions]
        await ensure_topics(
            self.settings.kafka_bootstrap_servers,
            topics_of(self.registry, publishes=self.publishes, consumes=consumes),
            replication_factor=self.settings.kafka_topic_replicas,
            **self.settings.kafka_security().client_options(),
        )

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.relay.close()
        await self.broker.stop()
        await self.producer.stop()
        await self.redis.aclose()
        await self.engine.dispose()

    async def readiness(self) -> dict[str, str]:
        """Check each dependency within two seconds; 'ok' or the error."""

        async def kafka() -> None:
            await self.producer.client.fetch_all_metadata()

        async def redis() -> None:
            await self.redis.ping()

        checks = {"database": ping(self.engine), "kafka": kafka(), "redis": redis()}
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                await asyncio.wait_for(check, timeout=2.0)
                results[name] = "ok"
            except Exception as exc:
                results[name] = f"failed: {type(exc).__name__}"
        if self.publishes:
            OUTBOX_BACKLOG.labels(self.service).set(await self.relay.backlog())
        return results


async def _as_coroutine(run: Callable[[], Awaitable[None]]) -> None:
    await run()


def _operations_router(runtime: ServiceRuntime) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/health/ready")
    async def ready() -> JSONResponse:
        """The database, Kafka and Redis answer."""
        checks = await runtime.readiness()
        healthy = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ok" if healthy else "unavailable", "checks": checks},
            status_code=200 if healthy else 503,
        )

    @router.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
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

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    app.state.runtime = runtime
    install_problem_handlers(app)
    install_auth(app, verifier or TokenVerifier(settings.auth))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes, larger=upload_limits)
    app.add_middleware(CorrelationAndMetrics, service=runtime.service)
    app.include_router(_operations_router(runtime))
    for router in routers:
        app.include_router(router)
    return app


async def runtime_of(request: Request) -> ServiceRuntime:
    """The runtime of the app serving a request (a FastAPI dependency; async, so FastAPI does
    not hand it to a worker thread)."""
    runtime: ServiceRuntime = request.app.state.runtime
    return runtime
