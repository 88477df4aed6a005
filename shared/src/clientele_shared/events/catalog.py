"""Clientele's topics, their grants (the source of the Kafka ACLs) and its event schemas."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clientele_shared.events.registry import EventSpec, Registry, Topic

DIRECTORY = "directory"
INTERACTIONS = "interactions"
PIPELINE = "pipeline"
CAMPAIGNS = "campaigns"
NOTIFIER = "notifier"
ERP = "erp"
"""The ERP integration: an external subscriber and the publisher of invoices and payments."""

SERVICES = (DIRECTORY, INTERACTIONS, PIPELINE, CAMPAIGNS, NOTIFIER)

ORGANIZATIONS = "clientele.directory.organizations"
PERSONS = "clientele.directory.persons"
EMPLOYEES = "clientele.directory.employees"
INTERACTION_LOG = "clientele.interactions.interactions"
DEALS = "clientele.pipeline.deals"
CAMPAIGN_EVENTS = "clientele.campaigns.campaigns"
NOTIFICATION_REQUESTS = "clientele.{service}.notifications"
DELIVERIES = "clientele.notifier.deliveries"
ERP_DOCUMENTS = "clientele.erp.documents"


def notification_requests(service: str) -> str:
    """The topic on which one service asks the notifier to deliver something."""
    return NOTIFICATION_REQUESTS.format(service=service)


TOPICS = [
    Topic(
        ORGANIZATIONS,
        DIRECTORY,
        frozenset({INTERACTIONS, PIPELINE, CAMPAIGNS, ERP}),
        description="Organizations (counterparties): created, updated, merged, deleted, blocked.",
    ),
    Topic(
        PERSONS,
        DIRECTORY,
        frozenset({INTERACTIONS, PIPELINE, CAMPAIGNS, ERP}),
        description="Contact persons and their employments.",
    ),
    Topic(
        EMPLOYEES,
        DIRECTORY,
        frozenset({INTERACTIONS, PIPELINE, CAMPAIGNS, NOTIFIER}),
        description="The company's employees, roles and directions.",
    ),
    Topic(
        INTERACTION_LOG,
        INTERACTIONS,
        frozenset({PIPELINE, CAMPAIGNS, ERP}),
        description="Interactions logged, planned, completed, overdue, handed over.",
    ),
    Topic(
        DEALS,
        PIPELINE,
        frozenset({INTERACTIONS, CAMPAIGNS, ERP}),
        description="Deals and their stage changes.",
    ),
    Topic(
        CAMPAIGN_EVENTS,
        CAMPAIGNS,
        frozenset({INTERACTIONS, PIPELINE}),
        description="Marketing events, participants and outcomes.",
    ),
    *(
        Topic(
            notification_requests(service),
            service,
            frozenset({NOTIFIER}),
            description=f"Delivery requests from {service} to the notifier.",
        )
        for service in (DIRECTORY, INTERACTIONS, PIPELINE, CAMPAIGNS)
    ),
    Topic(
        DELIVERIES,
        NOTIFIER,
        frozenset({INTERACTIONS, PIPELINE, CAMPAIGNS}),
        description="Delivery results going back to the requesters.",
    ),
    Topic(
        ERP_DOCUMENTS,
        ERP,
        frozenset({PIPELINE, INTERACTIONS}),
        description="Invoices and payments published by the ERP.",
    ),
]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrganizationCreated(_Payload):
    """A new organization in the directory."""

    organization_id: uuid.UUID
    legal_name: str
    short_name: str | None = None
    inn: str | None = None
    status: str
    directions: list[str] = Field(default_factory=list)


class FieldChange(_Payload):
    """A changed field with its old and new value."""

    old: Any = None
    new: Any = None


class OrganizationUpdated(_Payload):
    """Changed fields of an organization, each with its old and new value."""

    organization_id: uuid.UUID
    version: int
    changes: dict[str, FieldChange]


EVENTS = [
    EventSpec("directory.organization.created", 1, ORGANIZATIONS, OrganizationCreated),
    EventSpec("directory.organization.updated", 1, ORGANIZATIONS, OrganizationUpdated),
]

REGISTRY = Registry.of(TOPICS, EVENTS)
"""The registry every service runs with."""
