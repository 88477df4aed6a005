"""Composition root of the directory service."""

from pathlib import Path

from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import (
    DIRECTIONS_STATE,
    EMPLOYEES,
    EMPLOYEES_STATE,
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    PERSONS_STATE,
    REGISTER_STATE,
)
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.state import StateSource
from clientele_shared.rebuild import StateEntity
from clientele_shared.runtime import ServiceRuntime, create_service_app
from fastapi import FastAPI

from clientele_directory import subscriptions
from clientele_directory.attributes.router import router as attributes_router
from clientele_directory.auth.router import ISSUER_STATE_KEY
from clientele_directory.auth.router import router as auth_router
from clientele_directory.directions.router import router as directions_router
from clientele_directory.employees.router import router as employees_router
from clientele_directory.exports.router import router as exports_router
from clientele_directory.imports.jobs import JobRunner
from clientele_directory.imports.router import RUNNER_STATE_KEY
from clientele_directory.imports.router import router as imports_router
from clientele_directory.lists.router import router as lists_router
from clientele_directory.merging.router import router as merging_router
from clientele_directory.organizations.router import router as organizations_router
from clientele_directory.person_imports.router import router as person_imports_router
from clientele_directory.persons.router import router as persons_router
from clientele_directory.register.router import router as register_router
from clientele_directory.search.router import router as search_router
from clientele_directory.settings import DirectorySettings
from clientele_directory.state import (
    direction_source,
    employee_source,
    list_source,
    member_sources,
    membership_key,
    organization_source,
    person_sources,
    register_sources,
)
from clientele_directory.tables import (
    directions,
    employees,
    metadata,
    organization_list_members,
    organization_lists,
    organizations,
    persons,
    unwanted_register,
)

MIGRATIONS = Path(__file__).parent / "migrations"


def load_settings() -> DirectorySettings:
    return DirectorySettings()


def state_entities(outbox: Outbox) -> dict[str, StateEntity]:
    """Entities `clientele republish directory <name>` stages the state records of."""
    return {
        "organizations": StateEntity(organizations, organization_source(outbox)),
        "employees": StateEntity(employees, employee_source(outbox)),
        "persons": StateEntity(persons, person_sources(outbox)[0]),
        "directions": StateEntity(directions, direction_source(outbox), key="code"),
        "lists": StateEntity(organization_lists, list_source(outbox)),
        "list-members": StateEntity(
            organization_list_members, member_sources(outbox)[0], key=membership_key()
        ),
        "register": StateEntity(unwanted_register, register_sources(outbox)[0]),
    }


def state_sources(outbox: Outbox) -> list[StateSource]:
    """Every state source of the directory: staging a change event stages the state records of
    what it changed (ADR 18)."""
    return [
        organization_source(outbox),
        employee_source(outbox),
        *person_sources(outbox),
        direction_source(outbox),
        list_source(outbox),
        *member_sources(outbox),
        *register_sources(outbox),
    ]


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
            DIRECTIONS_STATE,
            LISTS_STATE,
            LIST_MEMBERS_STATE,
            REGISTER_STATE,
        ],
    )
    for source in state_sources(runtime.outbox):
        runtime.outbox.add_state_source(source)
    subscriptions.subscribe(runtime.consumer, runtime.outbox)
    return runtime


def create_app(settings: DirectorySettings | None = None) -> FastAPI:
    settings = settings or load_settings()
    runtime = create_runtime(settings)
    app = create_service_app(
        runtime,
        title="Clientele directory",
        description="Organizations, persons, lists, directions and employees.",
        routers=[
            exports_router,
            imports_router,
            person_imports_router,
            search_router,  # before the routers whose /{id} paths would take its own
            organizations_router,
            merging_router,
            persons_router,
            attributes_router,
            lists_router,
            register_router,
            directions_router,
            employees_router,
            auth_router,
        ],
        upload_limits=dict.fromkeys(
            (r"/v1/organizations/import", r"/v1/persons/import", r"/v1/lists/[^/]+/members/upload"),
            settings.import_max_bytes + settings.upload_overhead_bytes,
        ),
    )
    runner = JobRunner(runtime, create_runtime)  # a job's child builds its runtime the same way
    runtime.add_background_task("import-jobs", runner.run)
    setattr(app.state, RUNNER_STATE_KEY, runner)
    auth = runtime.settings.auth
    if auth.private_key_file is not None:  # the built-in token issuer (POST /v1/auth/token)
        setattr(app.state, ISSUER_STATE_KEY, TokenIssuer.from_settings(auth))
    return app
