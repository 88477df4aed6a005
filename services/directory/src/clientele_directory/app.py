"""Composition root of the directory service."""

from pathlib import Path

from clientele_shared.events.catalog import EMPLOYEES, ORGANIZATIONS, PERSONS
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_directory.api import ROUTERS
from clientele_directory.settings import DirectorySettings
from clientele_directory.store import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> DirectorySettings:
    return DirectorySettings()


def create_app(settings: DirectorySettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(
        settings or load_settings(), metadata, publishes=[ORGANIZATIONS, PERSONS, EMPLOYEES]
    )
    return create_service_app(
        runtime,
        title="Clientele directory",
        description="Organizations, persons, lists, directions and employees.",
        routers=ROUTERS,
    )
