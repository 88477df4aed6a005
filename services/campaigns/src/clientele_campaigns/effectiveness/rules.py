"""Effectiveness figures of marketing events from counted participants and summed costs (no
I/O): participants by status and stage, costs per participant and per attendee (actual costs
divided by the count, per currency, rounded half up to the cent), consumables spent."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel

from clientele_campaigns.participants.rules import ParticipantStatus

STATUSES: tuple[ParticipantStatus, ...] = (
    "invited",
    "confirmed",
    "registered",
    "attended",
    "no_show",
    "cancelled",
)
CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class Money(BaseModel):
    """Sums of one currency (rows of the budget query)."""

    currency: str
    category: str
    planned: Decimal
    actual: Decimal


class Quantity(BaseModel):
    unit: str
    quantity: Decimal


class StageCount(BaseModel):
    stage_id: uuid.UUID
    name: str
    participants: int


class Cost(BaseModel):
    """Planned and actual costs in one currency and what one participant and one attendee cost
    (null without participants or attendees)."""

    currency: str
    planned: Decimal
    actual: Decimal
    per_participant: Decimal | None
    per_attendee: Decimal | None


class Consumable(BaseModel):
    """Money spent on consumables (paper, cartridges) in one currency."""

    currency: str
    planned: Decimal
    actual: Decimal


class Figures(BaseModel):
    participants: int
    attendees: int
    by_status: dict[str, int]
    costs: list[Cost]
    consumables: list[Consumable]
    consumables_used: list[Quantity]
    """How much of each unit (reams of paper, cartridges) the budget lines say was used."""


class EventFigures(Figures):
    campaign_id: uuid.UUID
    title: str
    status: str
    planned_start: datetime
    by_stage: list[StageCount]


class PeriodFigures(Figures):
    starts_from: datetime
    starts_before: datetime
    events: list[EventFigures]


def _per(amount: Decimal, count: int) -> Decimal | None:
    return (amount / count).quantize(CENT, rounding=ROUND_HALF_UP) if count else None


def figures(
    by_status: dict[str, int], money: Iterable[Money], quantities: Iterable[Quantity]
) -> Figures:
    """The figures of one event or of several together (costs never mix currencies)."""
    counts = {status: by_status.get(status, 0) for status in STATUSES}
    participants = sum(counts.values())
    attendees = counts["attended"]
    planned: dict[str, Decimal] = defaultdict(lambda: ZERO)
    actual: dict[str, Decimal] = defaultdict(lambda: ZERO)
    consumables: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for row in money:
        planned[row.currency] += row.planned
        actual[row.currency] += row.actual
        if row.category == "consumables":
            consumables[row.currency][0] += row.planned
            consumables[row.currency][1] += row.actual
    units: dict[str, Decimal] = defaultdict(Decimal)
    for used in quantities:
        units[used.unit] += used.quantity
    return Figures(
        participants=participants,
        attendees=attendees,
        by_status=counts,
        costs=[
            Cost(
                currency=currency,
                planned=planned[currency],
                actual=actual[currency],
                per_participant=_per(actual[currency], participants),
                per_attendee=_per(actual[currency], attendees),
            )
            for currency in sorted(planned)
        ],
        consumables=[
            Consumable(currency=currency, planned=sums[0], actual=sums[1])
            for currency, sums in sorted(consumables.items())
        ],
        consumables_used=[
            Quantity(unit=unit, quantity=quantity) for unit, quantity in sorted(units.items())
        ],
    )
