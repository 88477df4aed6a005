"""Effectiveness figures of marketing events from counted participants and summed costs (no
I/O): participants by status and stage, costs per participant and per attendee (actual costs
divided by the count, per currency, rounded half up to the cent), consumables spent; deals
attributed to the events and the conversion of participants into deals."""

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
SHARE = Decimal("0.0001")
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


class AttributedDeal(BaseModel):
    """A deal attributed to an event (a row of the attribution query)."""

    deal_id: uuid.UUID
    organization_id: uuid.UUID
    status: str
    amount: Decimal | None
    currency: str | None


class DealSum(BaseModel):
    """Attributed deals with an amount in one currency, and the won ones among them."""

    currency: str
    deals: int
    amount: Decimal
    won_deals: int
    won_amount: Decimal


class DealFigures(BaseModel):
    """Deals attributed to the event(s): those whose source names the event, and those opened
    by a participant's organization between the event's start and the end of the attribution
    window after it; conversion: the share of participating organizations (per event) with
    such a deal, rounded half up to 4 places (null without participants)."""

    deals: int
    won: int
    by_currency: list[DealSum]
    participating_organizations: int
    converted_organizations: int
    conversion: Decimal | None


class Figures(BaseModel):
    participants: int
    attendees: int
    by_status: dict[str, int]
    costs: list[Cost]
    consumables: list[Consumable]
    consumables_used: list[Quantity]
    """How much of each unit (reams of paper, cartridges) the budget lines say was used."""
    deals: DealFigures


class EventFigures(Figures):
    campaign_id: uuid.UUID
    title: str
    kind: str
    kind_name_ru: str
    kind_name_en: str
    status: str
    planned_start: datetime
    by_stage: list[StageCount]


class KindFigures(Figures):
    """The figures of the period's events of one kind together."""

    kind: str
    kind_name_ru: str
    kind_name_en: str
    events: int


class PeriodFigures(Figures):
    starts_from: datetime
    starts_before: datetime
    by_kind: list[KindFigures]
    """The events grouped by their kind (by code), each group's figures as the total's."""
    events: list[EventFigures]


def _per(amount: Decimal, count: int) -> Decimal | None:
    return (amount / count).quantize(CENT, rounding=ROUND_HALF_UP) if count else None


def deal_figures(
    attributed: Iterable[AttributedDeal], participating: int, converted: int
) -> DealFigures:
    """Counts and sums of attributed deals (each deal once; currencies never added together)."""
    unique = {deal.deal_id: deal for deal in attributed}
    sums: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for deal in unique.values():
        if deal.amount is None or deal.currency is None:
            continue
        won = deal.status == "won"
        sums[deal.currency][0] += deal.amount
        counts[deal.currency][0] += 1
        if won:
            sums[deal.currency][1] += deal.amount
            counts[deal.currency][1] += 1
    return DealFigures(
        deals=len(unique),
        won=sum(deal.status == "won" for deal in unique.values()),
        by_currency=[
            DealSum(
                currency=currency,
                deals=counts[currency][0],
                amount=amounts[0],
                won_deals=counts[currency][1],
                won_amount=amounts[1],
            )
            for currency, amounts in sorted(sums.items())
        ],
        participating_organizations=participating,
        converted_organizations=converted,
        conversion=(
            (Decimal(converted) / participating).quantize(SHARE, rounding=ROUND_HALF_UP)
            if participating
            else None
        ),
    )


def converted(attributed: Iterable[AttributedDeal], organizations: set[uuid.UUID]) -> int:
    """How many of an event's participating organizations have a deal attributed to it."""
    return len({deal.organization_id for deal in attributed} & organizations)


def figures(
    by_status: dict[str, int],
    money: Iterable[Money],
    quantities: Iterable[Quantity],
    deals: DealFigures,
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
        deals=deals,
    )
