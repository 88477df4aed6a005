"""Events in: the directory's organizations, persons and employees folded into read models;
its lists and their members from their state topics.

Each handler turns an event into whole records (``clientele_shared.directory_read_models``) and
applies each with the read model's one apply step; participants then follow what the directory
did to the organization or person (merged, deleted, restored, blocked). All of it happens in
the inbox's transaction: applied exactly once, with the participants' audit entries.
"""

from __future__ import annotations

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.inbox import EventConsumer
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifier import (
    DELIVERY_BOUNCED,
    DELIVERY_COMPLAINED,
    DELIVERY_FAILED,
    DELIVERY_SUCCEEDED,
    DeliveryResult,
)
from clientele_shared.events.state import subscribe_state
from clientele_shared.events.topics import (
    CAMPAIGNS,
    DEALS,
    DELIVERIES,
    EMPLOYEES,
    EMPLOYEES_STATE,
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    PERSONS_STATE,
)
from clientele_shared.service_layer import within
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.clients.service import READ_MODELS
from clientele_campaigns.consent import service as consent
from clientele_campaigns.contacts.service import CONTACTS, PREMISES
from clientele_campaigns.deals.service import apply_deal_event
from clientele_campaigns.lists.queries import LISTS, MEMBERS
from clientele_campaigns.mailings import service as mailings
from clientele_campaigns.mailings.rules import parse_idempotency_key
from clientele_campaigns.participants import service as participants
from clientele_campaigns.tables import audit_log

DIRECTORY_ACTOR = Actor(subject="directory", kind="service")


class DirectoryEvents:
    """Organization and person events: the read model, then the participants."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def organizations(
        self, session: AsyncSession, envelope: Envelope, payload: BaseModel
    ) -> None:
        actor = envelope.actor or DIRECTORY_ACTOR
        async with within(session, self.outbox, audit_log, actor) as uow:
            for record in await READ_MODELS.organization_records(session, payload):
                before = await READ_MODELS.organization(session, record.organization_id)
                if await READ_MODELS.apply_organization(session, record):  # older: no change
                    await participants.follow_organization(uow, before, record)

    async def persons(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        actor = envelope.actor or DIRECTORY_ACTOR
        async with within(session, self.outbox, audit_log, actor) as uow:
            for record in await READ_MODELS.person_records(session, payload):
                found = await READ_MODELS.persons_of(session, [record.person_id])
                if await READ_MODELS.apply_person(session, record):  # older: no change
                    before = found.get(record.person_id)
                    await participants.follow_person(uow, before, record)
                    await consent.follow_merge(uow, before, record)


async def on_employee_event(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
    for record in await READ_MODELS.employee_records(session, payload):
        await READ_MODELS.apply_employee(session, record)


NOTIFIER_ACTOR = Actor(subject="notifier", kind="service")
_RESULTS = {
    DELIVERY_SUCCEEDED: "sent",
    DELIVERY_BOUNCED: "bounced",
    DELIVERY_FAILED: "failed",
    DELIVERY_COMPLAINED: "complained",
}


class MailingResults:
    """The notifier's results on mailings' messages: each recipient's outcome, published once
    for the automation engine; a hard bounce published for the directory; a complaint withdraws
    the person's e-mail consent."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if not isinstance(payload, DeliveryResult) or payload.requester != CAMPAIGNS:
            return
        key = parse_idempotency_key(payload.idempotency_key)
        status = _RESULTS.get(envelope.type)
        if key is None or status is None:
            return
        if payload.channel == "webhook" and status == "sent":
            return  # a fax the gateway took: its own callback tells the result (ADR 47)
        async with within(session, self.outbox, audit_log, NOTIFIER_ACTOR) as uow:
            await mailings.delivery_result(uow, key, status, payload.reason)


def subscribe(consumer: EventConsumer, outbox: Outbox) -> None:
    """The directory's change topics and its state topics, through the same handlers: a new
    consumer (or a wiped read model) learns every record from the state topics (ADR 18);
    participants follow a record whichever stream tells first."""
    directory = DirectoryEvents(outbox)
    consumer.subscribe(ORGANIZATIONS, "organizations", directory.organizations)
    consumer.subscribe(ORGANIZATIONS_STATE, "organization-states", directory.organizations)
    consumer.subscribe(PERSONS, "persons", directory.persons)
    consumer.subscribe(PERSONS_STATE, "person-states", directory.persons)
    consumer.subscribe(EMPLOYEES, "employees", on_employee_event)
    consumer.subscribe(EMPLOYEES_STATE, "employee-states", on_employee_event)
    consumer.subscribe(DEALS, "deals", apply_deal_event)
    # mailings: the addresses, birthdays and employments of persons (ADR 38)
    subscribe_state(consumer, PERSONS_STATE, "mailing-contacts", CONTACTS)
    subscribe_state(consumer, ORGANIZATIONS_STATE, "mailing-premises", PREMISES)  # ADR 46
    consumer.subscribe(DELIVERIES, "mailing-deliveries", MailingResults(outbox))
    # lists and members only from their state topics: one stream, ordered per record
    subscribe_state(consumer, LISTS_STATE, "list-states", LISTS)
    subscribe_state(consumer, LIST_MEMBERS_STATE, "list-member-states", MEMBERS)
