"""The client summary (сводка): what one call shows of a client (pure: no I/O).

The cached part (``SummaryBody``) holds everything the read models know of the client, with the
directions of the items that have their own (deals, campaigns). The answer adds the live card
and the time-dependent flags, and drops what the caller may not see.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from clientele_shared.auth.principal import Principal
from pydantic import BaseModel

from clientele_interactions.domain.cards import ClientCard
from clientele_interactions.domain.people import Person
from clientele_interactions.log.rules import is_overdue
from clientele_interactions.log.schemas import Interaction


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
