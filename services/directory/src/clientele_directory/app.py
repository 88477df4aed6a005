"""Composition root of the directory service."""

from pathlib import Path

from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import (
    EMPLOYEES,
    EMPLOYEES_STATE,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    PERSONS_STATE,
)
from clientele_shared.events.outbox import Outbox
from clientele_shared.rebuild import StateEntity
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_directory.api import ROUTERS
from clientele_directory.auth.router import ISSUER_STATE_KEY
from clientele_directory.settings import DirectorySettings
from clientele_directory.state import employee_source, organization_source, person_sources
from clientele_directory.tables import employees, metadata, organizations, persons

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> DirectorySettings:
    return DirectorySettings()


def state_entities(outbox: Outbox) -> dict[str, StateEntity]:
    """Entities `clientele republish directory <name>` stages the state records of."""
    return {
        "organizations": StateEntity(organizations, organization_source(outbox)),
        "employees": StateEntity(employees, employee_source(outbox)),
        "persons": StateEntity(persons, person_sources(outbox)[0]),
    }


def create_runtime(settings: DirectorySettings) -> ServiceRuntime:
    """The directory's runtime: its grants and the sources of its state topics."""
    runtime = ServiceRuntime(
        settings,
        metadata,
        publishes=[
            ORGANIZATIONS,
            ORGANIZATIONS_STATE,
            PERSONS,
            PERSONS_STATE,
            EMPLOYEES,
            EMPLOYEES_STATE,
        ],
    )
    runtime.outbox.add_state_source(organization_source(runtime.outbox))
    runtime.outbox.add_state_source(employee_source(runtime.outbox))
    for source in person_sources(runtime.outbox):
        runtime.outbox.add_state_source(source)
    return runtime


def create_app(settings: DirectorySettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = create_runtime(settings)
    app = create_service_app(
        runtime,
        title="Clientele directory",
        description="Organizations, persons, lists, directions and employees.",
        routers=ROUTERS,
        upload_limits=dict.fromkeys(
            (r"/v1/organizations/import", r"/v1/lists/[^/]+/members/upload"),
            settings.import_max_bytes + settings.upload_overhead_bytes,
        ),
    )
    auth = runtime.settings.auth
    if auth.private_key_file is not None:  # the built-in token issuer (POST /v1/auth/token)
        setattr(app.state, ISSUER_STATE_KEY, TokenIssuer.from_settings(auth))
    return app
