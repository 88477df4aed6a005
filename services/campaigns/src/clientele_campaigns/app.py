"""Composition root of the campaigns service: one line per feature router."""

from pathlib import Path

from clientele_shared.events.topics import (
    CAMPAIGN_CONSENTS,
    CAMPAIGN_EVENTS,
    CAMPAIGNS,
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    MAILING_RESULTS,
    notification_requests,
)
from clientele_shared.rebuild import StateReadModel
from clientele_shared.runtime import ServiceRuntime, create_service_app
from clientele_shared.storage import S3Storage, create_storage
from fastapi import FastAPI

from clientele_campaigns import subscriptions
from clientele_campaigns.budget.router import router as budget
from clientele_campaigns.campaigns.router import router as campaigns
from clientele_campaigns.consent.router import router as consent
from clientele_campaigns.documents.router import router as documents
from clientele_campaigns.effectiveness.router import router as effectiveness
from clientele_campaigns.greetings.router import router as greetings
from clientele_campaigns.kinds.router import router as kinds
from clientele_campaigns.lists.queries import LISTS, MEMBERS
from clientele_campaigns.lists.router import router as lists
from clientele_campaigns.mailings.fax import router as fax
from clientele_campaigns.mailings.router import router as mailings
from clientele_campaigns.mailings.unsubscribe import router as unsubscribe
from clientele_campaigns.mailings.worker import MailingWorker
from clientele_campaigns.participants.router import router as participants
from clientele_campaigns.registration.router import router as registration
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.stages.router import router as stages
from clientele_campaigns.tables import metadata
from clientele_campaigns.templates.router import router as templates

MIGRATIONS = Path(__file__).parent / "migrations"
PUBLISHES = (
    CAMPAIGN_EVENTS,
    CAMPAIGN_CONSENTS,
    MAILING_RESULTS,
    notification_requests(CAMPAIGNS),
)
READ_MODELS = {
    "lists": StateReadModel(LISTS_STATE, LISTS),
    "list-members": StateReadModel(LIST_MEMBERS_STATE, MEMBERS),
}
"""Read models `clientele rebuild campaigns <name>` loads from their state topics."""


def load_settings() -> CampaignsSettings:
    return CampaignsSettings()


def create_app(settings: CampaignsSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
    subscriptions.subscribe(runtime.consumer, runtime.outbox)
    storage = create_storage(settings)
    if settings.run_mailing_worker:
        worker = MailingWorker(runtime, settings, storage)
        runtime.add_background_task("mailing-worker", worker.run)
    app = create_service_app(
        runtime,
        title="Clientele campaigns",
        description="Marketing events with plan and fact: budget, stages, participants and "
        "their outcomes, effectiveness.",
        routers=[
            campaigns,
            kinds,
            budget,
            stages,
            participants,
            lists,
            registration,
            effectiveness,
            documents,
            consent,
            templates,
            mailings,
            unsubscribe,
            fax,
            greetings,
        ],
        upload_limits={
            r"/v1/campaigns/[^/]+/documents": settings.attachment_max_bytes
            + settings.upload_overhead_bytes,
            r"/v1/mailings/[^/]+/letterhead": settings.letterhead_max_bytes
            + settings.upload_overhead_bytes,
        },
    )
    app.state.storage = storage
    if isinstance(storage, S3Storage):
        runtime.add_background_task("s3-client", storage.run)
    return app
