"""Events in: the directory's organizations (the client cards, from the change events and the
state topic), persons, employees, the pipeline's deals, the campaigns' events and the ERP's
documents (the clients' read models)."""

from __future__ import annotations

from datetime import timedelta

from clientele_shared.events.catalog import (
    CAMPAIGN_EVENTS,
    DEALS,
    EMPLOYEES,
    ERP_DOCUMENTS,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
)
from clientele_shared.events.inbox import EventConsumer
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.state import subscribe_state

from clientele_interactions.clients import readmodels
from clientele_interactions.clients.events import CARD_CHANGES, CARD_STATES, CARDS, CardEvents
from clientele_interactions.clock import Clock


def subscribe(
    consumer: EventConsumer, outbox: Outbox, clock: Clock, reminder_lead: timedelta
) -> None:
    consumer.subscribe(ORGANIZATIONS, CARD_CHANGES, CardEvents(outbox, clock, reminder_lead))
    subscribe_state(consumer, ORGANIZATIONS_STATE, CARD_STATES, CARDS)
    consumer.subscribe(PERSONS, "people", readmodels.on_person_event)
    consumer.subscribe(EMPLOYEES, "employees", readmodels.on_employee_event)
    consumer.subscribe(DEALS, "deals", readmodels.on_deal_event)
    consumer.subscribe(CAMPAIGN_EVENTS, "campaigns", readmodels.on_campaign_event)
    consumer.subscribe(ERP_DOCUMENTS, "erp-documents", readmodels.on_erp_document)
