"""Interactions domain: the local card of a client, folded from directory events (no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.events.catalog import OrganizationCreated, OrganizationUpdated
from clientele_shared.events.schemas.directory import OrganizationState
from pydantic import BaseModel

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
