"""Composition root of the notifier service."""

from pathlib import Path

from clientele_shared.events.catalog import DELIVERIES
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_notifier.api import ROUTERS
from clientele_notifier.events import subscribe
from clientele_notifier.livestream import InboxHub
from clientele_notifier.reminders import ReminderScheduler
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.store import metadata
from clientele_notifier.worker import DeliveryWorker

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> NotifierSettings:
    return NotifierSettings()


class Notifier:
    """The notifier's own parts around the shared runtime."""

    def __init__(self, runtime: ServiceRuntime, settings: NotifierSettings) -> None:
        self.hub = InboxHub(runtime.redis)
        self.worker = DeliveryWorker(runtime, settings)
        self.scheduler = ReminderScheduler(runtime, settings, self.hub)


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime(settings, metadata, publishes=[DELIVERIES])
    notifier = Notifier(runtime, settings)
    subscribe(runtime.consumer, runtime.outbox, notifier.scheduler, notifier.hub)
    runtime.add_background_task("reminder-index", notifier.scheduler.write_index)
    runtime.add_background_task("inbox-hub", notifier.hub.run)
    if settings.run_workers:
        runtime.add_background_task("delivery-worker", notifier.worker.run)
        runtime.add_background_task("reminder-scheduler", notifier.scheduler.run)
    app = create_service_app(
        runtime,
        title="Clientele notifier",
        description="Delivery of e-mail, in-app notifications, webhooks and reminders.",
        routers=ROUTERS,
    )
    app.state.notifier = notifier
    return app
