"""Composition root of the pipeline service: one line per feature router."""

from pathlib import Path

from clientele_shared.events.topics import DEALS, LEADS, PIPELINE, TASKS, notification_requests
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_pipeline import subscriptions
from clientele_pipeline.analytics.router import router as analytics
from clientele_pipeline.automation import engine as automation_engine
from clientele_pipeline.automation.peers import Interactions
from clientele_pipeline.automation.router import router as automation
from clientele_pipeline.board.router import router as board
from clientele_pipeline.deals.router import router as deals
from clientele_pipeline.documents.router import router as documents
from clientele_pipeline.leads.router import router as leads
from clientele_pipeline.pipelines.router import router as pipelines
from clientele_pipeline.playbooks.router import router as playbooks
from clientele_pipeline.settings import PipelineSettings
from clientele_pipeline.stages.router import router as stages
from clientele_pipeline.tables import metadata
from clientele_pipeline.tasks import service as task_service
from clientele_pipeline.tasks.router import router as tasks

MIGRATIONS = Path(__file__).parent / "migrations"
PUBLISHES = (DEALS, TASKS, LEADS, notification_requests(PIPELINE))


def load_settings() -> PipelineSettings:
    return PipelineSettings()


def create_app(settings: PipelineSettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
    subscriptions.subscribe(runtime.consumer, runtime.outbox, runtime.settings)
    interactions = Interactions.from_settings(settings)
    runtime.add_background_task(
        "automation-scheduler",
        lambda: automation_engine.scheduler(runtime.sessions, runtime.outbox, interactions),
    )
    runtime.add_background_task("task-overdue", lambda: task_service.overdue_worker(runtime))
    return create_service_app(
        runtime,
        title="Clientele pipeline",
        description=(
            "Pipelines and stages, deals and their stage history, the kanban board, tasks, leads."
        ),
        routers=[
            pipelines,
            stages,
            board,
            deals,
            documents,
            playbooks,
            automation,
            tasks,
            leads,
            analytics,
        ],
    )
