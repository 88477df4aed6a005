"""Composition root of the pipeline service."""

from pathlib import Path

from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_pipeline.api import router
from clientele_pipeline.settings import PipelineSettings
from clientele_pipeline.store import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> PipelineSettings:
    return PipelineSettings()


def create_app(settings: PipelineSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or load_settings(), metadata)
    return create_service_app(
        runtime,
        title="Clientele pipeline",
        description="Pipelines, stages, deals, tasks, automation rules, leads and sales analytics.",
        routers=[router],
    )
