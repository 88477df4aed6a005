"""Composition root of the notifier service: its parts around the runtime, one line per feature
router."""

from pathlib import Path

from clientele_shared.events.catalog import DELIVERIES
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_notifier.complaints.router import router as complaints
from clientele_notifier.deliveries.router import router as deliveries
from clientele_notifier.deliveries.worker import DeliveryWorker
from clientele_notifier.inbox.live import InboxHub
from clientele_notifier.inbox.router import router as inbox
from clientele_notifier.preferences.router import router as preferences
from clientele_notifier.reminders.router import router as reminders
from clientele_notifier.reminders.scheduler import ReminderScheduler
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.subscriptions import subscribe
from clientele_notifier.tables import metadata
from clientele_notifier.webhooks.router import router as webhooks

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
        routers=[inbox, webhooks, deliveries, complaints, reminders, preferences],
    )
    app.state.notifier = notifier
    return app
