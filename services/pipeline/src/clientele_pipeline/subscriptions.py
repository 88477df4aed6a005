"""Events in: the directory's organizations, persons and employees folded into read models.

Each handler turns an event into whole records (``clients.service.*_records``) and applies
each with the read model's one apply step; for organizations, the deals then follow what the
directory did to the client (merged, deleted, restored, blocked). All of it happens in the
inbox's transaction: applied exactly once, with the deals' audit entries and events.
The pipeline's own deal events fire the automation rules (``automation``, ADR 25), and so do
interactions' contacts with a deal, the notifier's results of the rules' requests and
campaigns' mailing results for a deal's client or contacts (``automation.mailing_results``).
Interactions' hand-overs of a client pass its open tasks to the new employee (``tasks``).
The ERP's documents are attached to their deals and clients (``documents``).
"""

from __future__ import annotations

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.inbox import EventConsumer
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.erp import ErpDocument
from clientele_shared.events.schemas.interactions import (
    InteractionCompleted,
    InteractionLogged,
    ResponsibilityHandedOver,
)
from clientele_shared.events.topics import (
    DEALS,
    DELIVERIES,
    EMPLOYEES,
    EMPLOYEES_STATE,
    ERP_DOCUMENTS,
    INTERACTION_LOG,
    MAILING_RESULTS,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    PERSONS_STATE,
    TASKS,
)
from clientele_shared.service_layer import within
from clientele_shared.settings import ServiceSettings
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.analytics import service as analytics
from clientele_pipeline.automation import engine as automation
from clientele_pipeline.automation.mailing_results import MailingResultTriggers
from clientele_pipeline.automation.service import (
    DealEvents,
    DeliveryTriggers,
    InteractionTriggers,
    TaskTriggers,
)
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import service as deals
from clientele_pipeline.documents import service as documents
from clientele_pipeline.documents.rules import KIND_OF_EVENT
from clientele_pipeline.tables import audit_log
from clientele_pipeline.tasks import service as tasks

DIRECTORY_ACTOR = Actor(subject="directory", kind="service")


class OrganizationEvents:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        actor = envelope.actor or DIRECTORY_ACTOR
        async with within(session, self.outbox, audit_log, actor) as uow:
            for record in await clients.organization_records(session, payload):
                before = await clients.organization(session, record.organization_id)
                if await clients.apply_organization(session, record):  # older: changes nothing
                    await deals.follow_client(uow, before, record)
                    await tasks.follow_client(uow, before, record)


class PersonEvents:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        actor = envelope.actor or DIRECTORY_ACTOR
        async with within(session, self.outbox, audit_log, actor) as uow:
            for record in await clients.person_records(session, payload):
                before = (await clients.persons_of(session, [record.person_id])).get(
                    record.person_id
                )
                if await clients.apply_person(session, record):  # older: changes nothing
                    await deals.follow_person(uow, before, record)
                    if before is None or (before.birthday, before.deleted) != (
                        record.birthday,
                        record.deleted,
                    ):
                        await automation.on_contact_changed(session, record.person_id)


async def on_employee_event(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
    for record in await clients.employee_records(session, payload):
        await clients.apply_employee(session, record)


class InteractionEvents:
    """Interactions' events: a client handed over takes its open tasks along; a contact that
    happened about a deal counts for the analytics."""

    def __init__(self, outbox: Outbox, settings: ServiceSettings) -> None:
        self.outbox = outbox
        self.settings = settings

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if isinstance(payload, InteractionLogged | InteractionCompleted):
            if payload.deal_id is not None and payload.status == "done":
                await analytics.record_contact(session, payload)
        elif isinstance(payload, ResponsibilityHandedOver):
            actor = envelope.actor or Actor(subject="interactions", kind="service")
            async with within(session, self.outbox, audit_log, actor) as uow:
                await tasks.hand_over(uow, payload, tasks.lead_of(self.settings))


class ErpDocuments:
    """The ERP's invoices, payments and shipments: attached to their deal and client; one it
    cannot attach fails with the reason (retried, then dead-lettered with it)."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        assert isinstance(payload, ErpDocument)
        actor = envelope.actor or Actor(subject="erp", kind="service")
        async with within(session, self.outbox, audit_log, actor) as uow:
            await documents.attach(uow, KIND_OF_EVENT[envelope.type], payload, envelope.event_id)


def subscribe(consumer: EventConsumer, outbox: Outbox, settings: ServiceSettings) -> None:
    """The directory's change topics and its state topics, through the same handlers: a new
    consumer (or a wiped read model) learns every record from the state topics, which keep the
    latest snapshot of each (ADR 18); the deals follow a client whichever stream tells first,
    since they follow the difference between the read model before and after."""
    organizations, persons = OrganizationEvents(outbox), PersonEvents(outbox)
    consumer.subscribe(ORGANIZATIONS, "organizations", organizations)
    consumer.subscribe(ORGANIZATIONS_STATE, "organization-states", organizations)
    consumer.subscribe(PERSONS, "persons", persons)
    consumer.subscribe(PERSONS_STATE, "person-states", persons)
    consumer.subscribe(EMPLOYEES, "employees", on_employee_event)
    consumer.subscribe(EMPLOYEES_STATE, "employee-states", on_employee_event)
    consumer.subscribe_batch(DEALS, "automation", DealEvents(outbox))
    consumer.subscribe(INTERACTION_LOG, "interactions", InteractionEvents(outbox, settings))
    consumer.subscribe(ERP_DOCUMENTS, "erp-documents", ErpDocuments(outbox))
    consumer.subscribe(INTERACTION_LOG, "automation-interactions", InteractionTriggers(outbox))
    consumer.subscribe(DELIVERIES, "automation-deliveries", DeliveryTriggers(outbox))
    consumer.subscribe(TASKS, "automation-tasks", TaskTriggers(outbox))
    consumer.subscribe(MAILING_RESULTS, "automation-mailings", MailingResultTriggers(outbox))
