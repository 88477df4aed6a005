"""SQL of the effectiveness figures: counts and sums grouped by event, in five statements."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import func, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.effectiveness.rules import AttributedDeal, Money, Quantity
from clientele_campaigns.tables import budget_lines, campaigns, deals, mailing_prints, participants


async def visible_ids(
    session: AsyncSession, principal: Principal, starts_from: datetime, starts_before: datetime
) -> list[uuid.UUID]:
    """Live events of the caller's directions planned to start in the period."""
    return list(
        (
            await session.scalars(
                select(campaigns.c.id)
                .where(
                    visible_to(principal, campaigns.c.directions),
                    campaigns.c.deleted_at.is_(None),
                    campaigns.c.planned_start >= starts_from,
                    campaigns.c.planned_start < starts_before,
                )
                .order_by(campaigns.c.planned_start, campaigns.c.id)
            )
        ).all()
    )


async def counts(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[uuid.UUID, str, int]]]:
    """Per event: (stage, status, participants) of its visible participants."""
    rows = await session.execute(
        select(
            participants.c.campaign_id,
            participants.c.stage_id,
            participants.c.status,
            func.count(),
        )
        .where(participants.c.campaign_id.in_(ids), ~participants.c.client_hidden)
        .group_by(participants.c.campaign_id, participants.c.stage_id, participants.c.status)
    )
    found: dict[uuid.UUID, list[tuple[uuid.UUID, str, int]]] = defaultdict(list)
    for campaign_id, stage_id, status, count in rows:
        found[campaign_id].append((stage_id, status, count))
    return found


async def money(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Money]]:
    rows = await session.execute(
        select(
            budget_lines.c.campaign_id,
            budget_lines.c.category,
            budget_lines.c.currency,
            func.coalesce(func.sum(budget_lines.c.planned), 0),
            func.coalesce(func.sum(budget_lines.c.actual), 0),
        )
        .where(budget_lines.c.campaign_id.in_(ids))
        .group_by(budget_lines.c.campaign_id, budget_lines.c.category, budget_lines.c.currency)
    )
    found: dict[uuid.UUID, list[Money]] = defaultdict(list)
    for campaign_id, category, currency, planned, actual in rows:
        found[campaign_id].append(
            Money(category=category, currency=currency, planned=planned, actual=actual)
        )
    return found


async def quantities(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Quantity]]:
    """Consumables used, per event and unit."""
    rows = await session.execute(
        select(budget_lines.c.campaign_id, budget_lines.c.unit, func.sum(budget_lines.c.quantity))
        .where(
            budget_lines.c.campaign_id.in_(ids),
            budget_lines.c.category == "consumables",
            budget_lines.c.unit.is_not(None),
        )
        .group_by(budget_lines.c.campaign_id, budget_lines.c.unit)
    )
    found: dict[uuid.UUID, list[Quantity]] = defaultdict(list)
    for campaign_id, unit, quantity in rows:
        found[campaign_id].append(Quantity(unit=unit, quantity=quantity))
    for campaign_id, used in (await printed(session, ids)).items():
        found[campaign_id] += used
    return found


async def printed(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Quantity]]:
    """What the events' printed paper mailings took (ADR 46), as units of their own:
    ``mailing_sheet_a4``, ``mailing_envelope_dl`` / ``_c5``, ``mailing_toner_cartridge``."""
    p = mailing_prints.c
    rows = await session.execute(
        select(
            p.campaign_id,
            p.envelope,
            func.sum(p.sheets),
            func.sum(p.envelopes),
            func.sum(p.toner_cartridges),
        )
        .where(p.campaign_id.in_(ids))
        .group_by(p.campaign_id, p.envelope)
        .order_by(p.campaign_id, p.envelope)
    )
    found: dict[uuid.UUID, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for campaign_id, envelope, sheets, envelopes, toner in rows:
        used = found[campaign_id]
        used["mailing_sheet_a4"] += sheets
        used[f"mailing_envelope_{envelope}"] += envelopes
        used["mailing_toner_cartridge"] += toner
    return {
        campaign_id: [Quantity(unit=unit, quantity=q) for unit, q in sorted(used.items())]
        for campaign_id, used in found.items()
    }


def _participating(ids: list[uuid.UUID]) -> Any:
    """(event, organization) of the events' visible participants who did not cancel."""
    return (
        select(participants.c.campaign_id, participants.c.organization_id)
        .where(
            participants.c.campaign_id.in_(ids),
            ~participants.c.client_hidden,
            participants.c.status != "cancelled",
        )
        .distinct()
    )


async def participating(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    found: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    for campaign_id, organization_id in await session.execute(_participating(ids)):
        found[campaign_id].add(organization_id)
    return found


async def attributed(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: timedelta
) -> dict[uuid.UUID, list[AttributedDeal]]:
    """Per event, the live deals the caller sees whose source names the event, or opened by a
    participating organization from the event's start until ``window`` after its end (actual
    dates where given, else planned), in one statement."""
    events = (
        select(
            campaigns.c.id,
            func.coalesce(campaigns.c.actual_start, campaigns.c.planned_start).label("starts"),
            (func.coalesce(campaigns.c.actual_end, campaigns.c.planned_end) + window).label("ends"),
        )
        .where(campaigns.c.id.in_(ids))
        .cte("events")
    )
    who = _participating(ids).cte("who")
    live = (~deals.c.deleted, visible_to(principal, deals.c.directions))
    columns = (
        deals.c.deal_id,
        deals.c.organization_id,
        deals.c.status,
        deals.c.amount,
        deals.c.currency,
    )
    named = (
        select(events.c.id.label("event_id"), *columns)
        .join(deals, deals.c.campaign_id == events.c.id)
        .where(*live)
    )
    opened = (
        select(who.c.campaign_id.label("event_id"), *columns)
        .join(events, events.c.id == who.c.campaign_id)
        .join(deals, deals.c.organization_id == who.c.organization_id)
        .where(deals.c.opened_at >= events.c.starts, deals.c.opened_at < events.c.ends, *live)
    )
    found: dict[uuid.UUID, list[AttributedDeal]] = defaultdict(list)
    for row in (await session.execute(union(named, opened))).mappings():
        found[row["event_id"]].append(AttributedDeal.model_validate(dict(row)))
    return found
