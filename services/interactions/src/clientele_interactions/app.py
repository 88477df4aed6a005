"""Composition root of the interactions service."""

from pathlib import Path

from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_interactions.api import router
from clientele_interactions.events import subscribe
from clientele_interactions.settings import InteractionsSettings
from clientele_interactions.store import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> InteractionsSettings:
    return InteractionsSettings()


def create_app(settings: InteractionsSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or load_settings(), metadata)
    subscribe(runtime.consumer)
    return create_service_app(
        runtime,
        title="Clientele interactions",
        description="The log of contacts with clients, planning, reminders and the client summary.",
        routers=[router],
    )
