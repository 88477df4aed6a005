"""Composition root of the interactions service: one line per feature router."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from clientele_shared.events.topics import (
    INTERACTION_LOG,
    INTERACTIONS,
    ORGANIZATIONS_STATE,
    notification_requests,
)
from clientele_shared.rebuild import StateReadModel
from clientele_shared.runtime import ServiceRuntime, create_service_app
from clientele_shared.storage import S3Storage, create_storage
from fastapi import FastAPI

from clientele_interactions.analytics.router import router as analytics
from clientele_interactions.attachments.router import router as attachments
from clientele_interactions.capture.imap import ImapPoller
from clientele_interactions.capture.router import router as capture
from clientele_interactions.clients.cache import SummaryCache
from clientele_interactions.clients.events import CARDS
from clientele_interactions.clients.router import router as clients
from clientele_interactions.clock import Clock, SystemClock
from clientele_interactions.exports.router import router as exports
from clientele_interactions.handovers.router import router as handovers
from clientele_interactions.log.overdue import OverdueWorker
from clientele_interactions.log.router import router as log
from clientele_interactions.problems import install_rule_handlers
from clientele_interactions.results.router import router as results
from clientele_interactions.settings import InteractionsSettings
from clientele_interactions.subscriptions import subscribe
from clientele_interactions.tables import metadata
from clientele_interactions.unmatched.router import router as unmatched

MIGRATIONS = Path(__file__).parent / "migrations"
PUBLISHES = (INTERACTION_LOG, notification_requests(INTERACTIONS))
READ_MODELS = {"organizations": StateReadModel(ORGANIZATIONS_STATE, CARDS)}
"""Read models `clientele rebuild interactions <name>` loads from their state topics."""


def load_settings() -> InteractionsSettings:
    return InteractionsSettings()


def create_app(
    settings: InteractionsSettings | None = None, *, clock: Clock | None = None
) -> FastAPI:
    settings = settings or load_settings()
    clock = clock or SystemClock()
    runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
    subscribe(
        runtime.consumer,
        runtime.outbox,
        clock,
        timedelta(minutes=settings.reminder_lead_minutes),
    )
    app = create_service_app(
        runtime,
        title="Clientele interactions",
        description="The log of contacts with clients, planning, reminders and the client summary.",
        routers=[
            clients,
            capture,
            unmatched,
            log,
            results,
            attachments,
            handovers,
            exports,
            analytics,
        ],
        upload_limits={
            r"/v1/interactions/[^/]+/attachments": settings.attachment_max_bytes
            + settings.upload_overhead_bytes,
            r"/v1/interactions/email": settings.email_max_bytes + settings.upload_overhead_bytes,
        },
    )
    app.state.clock = clock
    if settings.overdue_worker:
        worker = OverdueWorker(
            runtime.sessions,
            runtime.outbox,
            clock,
            batch=settings.overdue_batch,
            interval=settings.overdue_interval,
        )
        runtime.add_background_task("overdue-worker", worker.run)
    app.state.storage = storage = create_storage(settings)
    if isinstance(storage, S3Storage):
        runtime.add_background_task("s3-client", storage.run)
    if settings.imap_host:
        poller = ImapPoller(settings, runtime, app.state.storage, clock)
        runtime.add_background_task("imap-poller", poller.run)
    app.state.summary_cache = SummaryCache(runtime.redis, settings.summary_cache_ttl)
    install_rule_handlers(app)
    return app
