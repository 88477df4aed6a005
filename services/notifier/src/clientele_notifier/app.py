"""Composition root of the notifier service."""

from pathlib import Path

from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_notifier.api import router
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.store import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> NotifierSettings:
    return NotifierSettings()


def create_app(settings: NotifierSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or load_settings(), metadata)
    return create_service_app(
        runtime,
        title="Clientele notifier",
        description="Delivery of e-mail, in-app notifications, webhooks and reminders.",
        routers=[router],
    )
