"""Composition root of the campaigns service: one line per feature router."""

from pathlib import Path

from clientele_shared.events.topics import CAMPAIGN_EVENTS, LIST_MEMBERS_STATE, LISTS_STATE
from clientele_shared.rebuild import StateReadModel
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_campaigns import subscriptions
from clientele_campaigns.budget.router import router as budget
from clientele_campaigns.campaigns.router import router as campaigns
from clientele_campaigns.effectiveness.router import router as effectiveness
from clientele_campaigns.lists.queries import LISTS, MEMBERS
from clientele_campaigns.lists.router import router as lists
from clientele_campaigns.participants.router import router as participants
from clientele_campaigns.registration.router import router as registration
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.stages.router import router as stages
from clientele_campaigns.tables import metadata

MIGRATIONS = Path(__file__).parent / "migrations"
PUBLISHES = (CAMPAIGN_EVENTS,)
READ_MODELS = {
    "lists": StateReadModel(LISTS_STATE, LISTS),
    "list-members": StateReadModel(LIST_MEMBERS_STATE, MEMBERS),
}
"""Read models `clientele rebuild campaigns <name>` loads from their state topics."""


def load_settings() -> CampaignsSettings:
    return CampaignsSettings()


def create_app(settings: CampaignsSettings | None = None) -> FastAPI:
    runtime = ServiceRuntime(settings or load_settings(), metadata, publishes=PUBLISHES)
    subscriptions.subscribe(runtime.consumer, runtime.outbox)
    return create_service_app(
        runtime,
        title="Clientele campaigns",
        description="Marketing events with plan and fact: budget, stages, participants and "
        "their outcomes, effectiveness.",
        routers=[
            campaigns,
            budget,
            stages,
            participants,
            lists,
            registration,
            effectiveness,
        ],
    )
