"""The clients feature's rules (pure: no I/O): the local card of a client, the persons and
positions, and the deals, folded from the directory's and the pipeline's events; and the client
summary (сводка), what one call shows of a client.

The summary's cached part (``SummaryBody``) holds everything the read models know of the client,
with the directions of the items that have their own (deals, campaigns). The answer adds the live
card and the time-dependent flags, and drops what the caller may not see.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.events.catalog import OrganizationCreated, OrganizationUpdated
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    EmploymentChanged,
    OrganizationState,
    PersonCreated,
    PersonUpdated,
)
from clientele_shared.events.schemas.pipeline import (
    DealChanged,
    DealDeleted,
    DealLost,
    DealSnapshot,
    DealStageChanged,
    DealWon,
)
from pydantic import BaseModel

from clientele_interactions.log.rules import is_overdue
from clientele_interactions.log.schemas import Interaction

CARD_FIELDS = ("legal_name", "short_name", "inn", "status", "directions")


class ClientCard(BaseModel):
    """What interactions knows of an organization, kept from the directory's events."""

    organization_id: uuid.UUID
    legal_name: str
    short_name: str | None
    inn: str | None
    status: str
    directions: list[str]
    version: int
    blocked: bool = False
    """A match of the unwanted counterparty register: no new business (see ``blocked_refusal``)."""


def card_from_created(event: OrganizationCreated) -> ClientCard:
    return ClientCard(
        organization_id=event.organization_id,
        legal_name=event.legal_name,
        short_name=event.short_name,
        inn=event.inn,
        status=event.status,
        directions=sorted(event.directions),
        version=event.version,
        blocked=event.blocked,
    )


def card_changes(event: OrganizationUpdated) -> dict[str, Any]:
    """The card columns an update event changes (fields the card does not keep are ignored)."""
    return {name: change.new for name, change in event.changes.items() if name in CARD_FIELDS}


def card_columns(state: OrganizationState) -> dict[str, Any]:
    """The card's columns from the organization's state record (ADR 18)."""
    return {
        "organization_id": state.organization_id,
        "legal_name": state.legal_name,
        "short_name": state.short_name,
        "inn": state.inn,
        "status": state.status,
        "directions": sorted(state.directions),
        "version": state.version,
        "state_revision": state.revision,
        "blocked": state.blocked,
        "deleted": state.deleted,
        "merged_into": state.merged_into,
    }


PERSON_FIELDS = (
    "last_name",
    "first_name",
    "middle_name",
    "last_name_latin",
    "first_name_latin",
    "emails",
    "phones",
    "directions",
)


def normalize_emails(values: Iterable[Any]) -> list[str]:
    """E-mail addresses in lower case, without duplicates (matching is case-insensitive)."""
    return list(dict.fromkeys(str(value).strip().lower() for value in values if value))


def _normalized(name: str, value: Any) -> Any:
    if name == "emails":
        return normalize_emails(value or [])
    if name == "directions":
        return sorted(set(value or []))
    if name == "phones":
        return list(value or [])
    return value


def person_values(event: PersonCreated) -> dict[str, Any]:
    return {
        "person_id": event.person_id,
        **{name: _normalized(name, getattr(event, name)) for name in PERSON_FIELDS},
        "blocked": event.blocked,
        "deleted": False,
        "version": event.version,
    }


def person_changes(event: PersonUpdated) -> dict[str, Any]:
    """The columns an update changes (fields interactions does not keep are ignored)."""
    values = {
        name: _normalized(name, change.new)
        for name, change in event.changes.items()
        if name in PERSON_FIELDS
    }
    return {**values, "blocked": event.blocked}


def employment_values(event: EmploymentChanged) -> dict[str, Any]:
    return {
        "employment_id": event.employment_id,
        "person_id": event.person_id,
        "organization_id": event.organization_id,
        "position": event.position,
        "department": event.department,
        "emails": normalize_emails(event.emails),
        "phones": list(event.phones),
        "since": event.since,
        "until": event.until,
        "deleted": event.change == "deleted",
        "version": event.version,
    }


def full_name(row: Mapping[str, Any]) -> str:
    """ "Last First Middle" as Russian business use writes it; the Latin name when there is no
    Cyrillic one."""
    parts = [row.get("last_name"), row.get("first_name"), row.get("middle_name")]
    name = " ".join(part for part in parts if part)
    if not name:
        latin = [row.get("first_name_latin"), row.get("last_name_latin")]
        name = " ".join(part for part in latin if part)
    return name or "—"


def employment_active(since: date | None, until: date | None, today: date) -> bool:
    return (since is None or since <= today) and (until is None or until >= today)


class Person(BaseModel):
    """A person at a client, as the summary and the address book show them."""

    person_id: uuid.UUID
    full_name: str
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    position: str | None = None
    department: str | None = None
    emails: list[str]
    phones: list[dict[str, Any]]
    organization_id: uuid.UUID | None = None
    organization_name: str | None = None
    blocked: bool = False
    """In the unwanted counterparty register."""


EMPLOYEE_FIELDS = ("name", "email", "roles", "directions", "manager_id", "active")


def employee_values(event: EmployeeCreated) -> dict[str, Any]:
    return {
        "employee_id": event.employee_id,
        "name": event.name,
        "email": event.email.strip().lower(),
        "roles": sorted(set(event.roles)),
        "directions": sorted(set(event.directions)),
        "manager_id": event.manager_id,
        "active": event.active,
        "version": event.version,
    }


def employee_changes(event: EmployeeUpdated) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, change in event.changes.items():
        if name not in EMPLOYEE_FIELDS:
            continue
        value = change.new
        if name == "email" and value is not None:
            value = str(value).strip().lower()
        elif name in ("roles", "directions"):
            value = sorted(set(value or []))
        values[name] = value
    return values


_COPIED = ("title", "currency", "directions", "organization_id")


def deal_line(deal: DealSnapshot, at: datetime) -> dict[str, Any]:
    """The whole summary line of a deal from an event that carries the whole deal."""
    return {
        "deal_id": deal.deal_id,
        "organization_id": deal.organization_id,
        "title": deal.title,
        "stage": deal.stage_name,
        "status": deal.status,
        "amount": deal.amount,
        "currency": deal.currency,
        "directions": sorted(set(deal.directions)),
        "version": deal.version,
        "updated_at": at,
    }


def deal_changes(
    event: DealChanged | DealStageChanged | DealWon | DealLost | DealDeleted,
) -> dict[str, Any]:
    """The summary columns an event that carries part of a deal changes."""
    if isinstance(event, DealDeleted):
        return {"status": "deleted"}  # hidden (the summary shows open deals) until restored
    if isinstance(event, DealWon | DealLost):
        return {"status": "won" if isinstance(event, DealWon) else "lost"}
    if isinstance(event, DealStageChanged):
        return {
            "stage": event.stage_name,
            "status": event.status,
            "title": event.title,
            "amount": event.amount,
            "currency": event.currency,
        }
    values: dict[str, Any] = {
        name: event.changes[name].new for name in _COPIED if name in event.changes
    }
    if "amount" in event.changes:
        new = event.changes["amount"].new
        values["amount"] = None if new is None else Decimal(str(new))
    if "directions" in values:
        values["directions"] = sorted(set(values["directions"] or []))
    values["organization_id"] = event.organization_id
    return values


class DealLine(BaseModel):
    deal_id: uuid.UUID
    title: str
    stage: str | None
    status: str
    amount: Decimal | None
    currency: str | None
    directions: list[str]
    updated_at: datetime


class CampaignLine(BaseModel):
    campaign_id: uuid.UUID
    name: str
    status: str
    occurred_at: datetime | None
    directions: list[str]


class ErpDocumentLine(BaseModel):
    document_id: str
    kind: str
    number: str | None
    issued_on: datetime | None
    amount: Decimal | None
    currency: str | None
    status: str | None


class SummaryBody(BaseModel):
    """The cached part of a summary, keyed by the client's summary generation."""

    people: list[Person]
    last_interactions: list[Interaction]
    next_planned: list[Interaction]
    open_deals: list[DealLine]
    campaigns: list[CampaignLine]
    erp_documents: list[ErpDocumentLine]
    built_at: datetime


class PlannedContact(Interaction):
    overdue: bool


class Summary(BaseModel):
    card: ClientCard
    people: list[Person]
    last_interactions: list[Interaction]
    next_planned: list[PlannedContact]
    overdue_count: int
    open_deals: list[DealLine]
    campaigns: list[CampaignLine]
    erp_documents: list[ErpDocumentLine]
    built_at: datetime


def present(
    card: ClientCard,
    body: SummaryBody,
    principal: Principal,
    *,
    now: datetime,
    overdue_count: int,
) -> Summary:
    """The summary one caller sees (the card itself is visible to them: checked before)."""
    return Summary(
        card=card,
        people=body.people,
        last_interactions=body.last_interactions,
        next_planned=[
            PlannedContact(**item.model_dump(), overdue=is_overdue(item.status, item.due_at, now))
            for item in body.next_planned
        ],
        overdue_count=overdue_count,
        open_deals=[d for d in body.open_deals if principal.can_see(d.directions)],
        campaigns=[c for c in body.campaigns if principal.can_see(c.directions)],
        erp_documents=body.erp_documents,
        built_at=body.built_at,
    )
