"""The client's deals as the summary shows them, from the pipeline's deal events (no I/O)."""

from __future__ import annotations

from datetime import datetime
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
