"""Composition root of the campaigns service."""

from pathlib import Path

from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_campaigns.api import router
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.store import metadata

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> CampaignsSettings:
    return CampaignsSettings()


def create_app(settings: CampaignsSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or load_settings(), metadata)
    return create_service_app(
        runtime,
        title="Clientele campaigns",
        description="Marketing events, mailings, newsletters, consent and effectiveness.",
        routers=[router],
    )
