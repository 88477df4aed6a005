"""The deals read model's columns from the pipeline's deal events (no I/O)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from clientele_shared.events.schemas.pipeline import (
    DealChanged,
    DealDeleted,
    DealLost,
    DealSnapshot,
    DealStageChanged,
    DealWon,
)

PartialDealEvent = DealChanged | DealStageChanged | DealWon | DealLost | DealDeleted


def _campaign(source: Any) -> uuid.UUID | None:
    """The marketing event a deal's ``source`` names (``source.campaign_id``), if any."""
    value = source.get("campaign_id") if isinstance(source, dict) else None
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def deal_record(deal: DealSnapshot) -> dict[str, Any]:
    """Every column an event carrying the whole deal gives (not when it was opened)."""
    return {
        "deal_id": deal.deal_id,
        "version": deal.version,
        "organization_id": deal.organization_id,
        "campaign_id": _campaign(deal.source),
        "status": deal.status,
        "amount": deal.amount,
        "currency": deal.currency,
        "directions": sorted(set(deal.directions)),
        "deleted": False,
    }


def deal_changes(event: PartialDealEvent) -> dict[str, Any]:
    """The columns an event carrying part of a deal changes (always its organization: a merged
    client's deals are re-pointed by the pipeline with a new version)."""
    values: dict[str, Any] = {"organization_id": event.organization_id, "version": event.version}
    if isinstance(event, DealDeleted):
        values["deleted"] = True
    elif isinstance(event, DealWon | DealLost):
        values["status"] = "won" if isinstance(event, DealWon) else "lost"
        if event.amount is not None:
            values.update(amount=event.amount, currency=event.currency)
    elif isinstance(event, DealStageChanged):
        values.update(status=event.status, amount=event.amount, currency=event.currency)
    else:
        changes = event.changes
        if "amount" in changes:
            new = changes["amount"].new
            values["amount"] = None if new is None else Decimal(str(new))
        if "currency" in changes:
            values["currency"] = changes["currency"].new
        if "directions" in changes:
            values["directions"] = sorted(set(changes["directions"].new or []))
        if "source" in changes:
            values["campaign_id"] = _campaign(changes["source"].new)
    return values
