"""Clientele's topics, their grants (the source of the Kafka ACLs) and its event schemas."""

from __future__ import annotations

from clientele_shared.events.registry import Registry, Topic
from clientele_shared.events.schemas import (
    campaigns,
    directory,
    interactions,
    notifications,
    notifier,
    pipeline,
)
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    OrganizationCreated,
    OrganizationUpdated,
)
from clientele_shared.events.topics import (
    CAMPAIGN_EVENTS,
    CAMPAIGNS,
    DEALS,
    DELIVERIES,
    DIRECTORY,
    EMPLOYEES,
    ERP,
    ERP_DOCUMENTS,
    INTERACTION_LOG,
    INTERACTIONS,
    NOTIFICATION_REQUESTS,
    NOTIFIER,
    ORGANIZATIONS,
    PERSONS,
    PIPELINE,
    SERVICES,
    notification_requests,
)

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
        frozenset({INTERACTIONS, CAMPAIGNS, ERP, PIPELINE}),
        description="Deals and their stage changes (the pipeline's automation consumes them too).",
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


EVENTS = [
    *directory.EVENTS,
    *interactions.EVENTS,
    *notifications.EVENTS,
    *notifier.EVENTS,
    *pipeline.EVENTS,
    *campaigns.EVENTS,
]

__all__ = [
    "CAMPAIGNS",
    "CAMPAIGN_EVENTS",
    "DEALS",
    "DELIVERIES",
    "DIRECTORY",
    "EMPLOYEES",
    "ERP",
    "ERP_DOCUMENTS",
    "EVENTS",
    "INTERACTIONS",
    "INTERACTION_LOG",
    "NOTIFICATION_REQUESTS",
    "NOTIFIER",
    "ORGANIZATIONS",
    "PERSONS",
    "PIPELINE",
    "REGISTRY",
    "SERVICES",
    "TOPICS",
    "FieldChange",
    "OrganizationCreated",
    "OrganizationUpdated",
    "notification_requests",
]

REGISTRY = Registry.of(TOPICS, EVENTS)
"""The registry every service runs with."""
