"""Clientele's topics, their grants (the source of the Kafka ACLs) and its event schemas."""

from __future__ import annotations

from clientele_shared.events.registry import DAY_MS, Registry, Topic
from clientele_shared.events.schemas import (
    campaigns,
    directory,
    erp,
    interactions,
    leads,
    mailings,
    notifications,
    notifier,
    pipeline,
    tasks,
)
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    OrganizationCreated,
    OrganizationUpdated,
)
from clientele_shared.events.topics import (
    CAMPAIGN_CONSENTS,
    CAMPAIGN_EVENTS,
    CAMPAIGNS,
    DEALS,
    DELIVERIES,
    DIRECTIONS_STATE,
    DIRECTORY,
    EMPLOYEES,
    EMPLOYEES_STATE,
    ERP,
    ERP_DOCUMENTS,
    INTERACTION_LOG,
    INTERACTIONS,
    LEADS,
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    MAILING_RESULTS,
    NOTIFICATION_REQUESTS,
    NOTIFIER,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    PERSONS_STATE,
    PIPELINE,
    REGISTER_STATE,
    SERVICES,
    TASKS,
    notification_requests,
)

CHANGE_RETENTION_MS = 30 * DAY_MS
"""Change events (old and new values) of entities with a state topic: kept 30 days; the state
topic keeps the latest snapshot of every record for good (ADR 18)."""

_DIRECTORY_READERS = frozenset({INTERACTIONS, PIPELINE, CAMPAIGNS, ERP})
_STAFF_READERS = frozenset({INTERACTIONS, PIPELINE, CAMPAIGNS, NOTIFIER})

TOPICS = [
    Topic(
        ORGANIZATIONS,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="Organizations (counterparties): created, updated, merged, deleted, blocked.",
        retention_ms=CHANGE_RETENTION_MS,
    ),
    Topic(
        ORGANIZATIONS_STATE,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="The latest full snapshot of every organization (compacted; ADR 18).",
        compacted=True,
    ),
    Topic(
        PERSONS,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="Contact persons and their employments.",
        retention_ms=CHANGE_RETENTION_MS,
    ),
    Topic(
        PERSONS_STATE,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="The latest full snapshot of every person with its employments (compacted).",
        compacted=True,
    ),
    Topic(
        EMPLOYEES,
        DIRECTORY,
        _STAFF_READERS,
        description="The company's employees, roles and directions.",
        retention_ms=CHANGE_RETENTION_MS,
    ),
    Topic(
        EMPLOYEES_STATE,
        DIRECTORY,
        _STAFF_READERS,
        description="The latest full snapshot of every employee (compacted; ADR 18).",
        compacted=True,
    ),
    Topic(
        DIRECTIONS_STATE,
        DIRECTORY,
        _STAFF_READERS,
        description="The latest full snapshot of every direction, keyed by its code (compacted).",
        compacted=True,
    ),
    Topic(
        LISTS_STATE,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="The latest full snapshot of every list of organizations (compacted).",
        compacted=True,
    ),
    Topic(
        LIST_MEMBERS_STATE,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="One record per member of a static list, keyed <list_id>:<organization_id>; "
        "a tombstone when it leaves (compacted).",
        compacted=True,
    ),
    Topic(
        REGISTER_STATE,
        DIRECTORY,
        _DIRECTORY_READERS,
        description="The latest full snapshot of every entry of the unwanted counterparty "
        "register (compacted).",
        compacted=True,
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
        TASKS,
        PIPELINE,
        frozenset({INTERACTIONS, PIPELINE}),
        description="Tasks: created, changed, completed, reassigned, overdue.",
    ),
    Topic(
        LEADS,
        PIPELINE,
        frozenset({ERP}),
        description="Leads (inbound requests): received or repeated, assigned, converted into "
        "a deal, rejected.",
    ),
    Topic(
        CAMPAIGN_EVENTS,
        CAMPAIGNS,
        frozenset({INTERACTIONS, PIPELINE}),
        description="Marketing events, participants and outcomes.",
    ),
    Topic(
        CAMPAIGN_CONSENTS,
        CAMPAIGNS,
        frozenset({DIRECTORY, INTERACTIONS, PIPELINE}),
        description="Persons' consent per channel (unsubscribes too) and hard-bounced addresses.",
    ),
    Topic(
        MAILING_RESULTS,
        CAMPAIGNS,
        frozenset({PIPELINE}),
        description="Each mailing recipient's delivery result (sent, bounced, failed, "
        "complained); the automation engine fires rules on it.",
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
        description="Invoices issued, payments received and shipments, published by the ERP.",
    ),
]


EVENTS = [
    *directory.EVENTS,
    *interactions.EVENTS,
    *notifications.EVENTS,
    *notifier.EVENTS,
    *pipeline.EVENTS,
    *tasks.EVENTS,
    *leads.EVENTS,
    *campaigns.EVENTS,
    *mailings.EVENTS,
    *erp.EVENTS,
]

__all__ = [
    "CAMPAIGNS",
    "CAMPAIGN_CONSENTS",
    "CAMPAIGN_EVENTS",
    "DEALS",
    "DELIVERIES",
    "DIRECTIONS_STATE",
    "DIRECTORY",
    "EMPLOYEES",
    "EMPLOYEES_STATE",
    "ERP",
    "ERP_DOCUMENTS",
    "EVENTS",
    "INTERACTIONS",
    "INTERACTION_LOG",
    "LEADS",
    "LISTS_STATE",
    "LIST_MEMBERS_STATE",
    "MAILING_RESULTS",
    "NOTIFICATION_REQUESTS",
    "NOTIFIER",
    "ORGANIZATIONS",
    "ORGANIZATIONS_STATE",
    "PERSONS",
    "PERSONS_STATE",
    "PIPELINE",
    "REGISTER_STATE",
    "REGISTRY",
    "SERVICES",
    "TASKS",
    "TOPICS",
    "FieldChange",
    "OrganizationCreated",
    "OrganizationUpdated",
    "notification_requests",
]

REGISTRY = Registry.of(TOPICS, EVENTS)
"""The registry every service runs with."""
