"""Effectiveness of one event and of the caller's events over a period."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import invalid_field
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.campaigns import queries as campaign_queries
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.campaigns.rules import Campaign
from clientele_campaigns.effectiveness import queries
from clientele_campaigns.effectiveness.rules import (
    EventFigures,
    Money,
    PeriodFigures,
    Quantity,
    StageCount,
    figures,
)

MAX_EVENTS = 5000
"""The most events one period report covers (422 beyond: ask for a shorter period)."""


async def _event_figures(
    session: AsyncSession, found: list[Campaign]
) -> tuple[list[EventFigures], list[Money], list[Quantity]]:
    """Each event's figures, and every money and quantity row they were computed from."""
    ids = [campaign.id for campaign in found]
    counts = await queries.counts(session, ids)
    money = await queries.money(session, ids)
    quantities = await queries.quantities(session, ids)
    reports = []
    for campaign in found:
        by_status: Counter[str] = Counter()
        by_stage: Counter[uuid.UUID] = Counter()
        for stage_id, status, count in counts.get(campaign.id, []):
            by_status[status] += count
            by_stage[stage_id] += count
        base = figures(by_status, money.get(campaign.id, []), quantities.get(campaign.id, []))
        reports.append(
            EventFigures(
                **base.model_dump(),
                campaign_id=campaign.id,
                title=campaign.title,
                status=campaign.status,
                planned_start=campaign.planned_start,
                by_stage=[
                    StageCount(stage_id=stage.id, name=stage.name, participants=by_stage[stage.id])
                    for stage in campaign.stages
                ],
            )
        )
    all_money = [row for rows in money.values() for row in rows]
    all_quantities = [row for rows in quantities.values() for row in rows]
    return reports, all_money, all_quantities


async def event_figures(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID
) -> EventFigures:
    async with runtime.sessions() as session:
        campaign = await campaigns.visible_campaign(session, principal, campaign_id)
        return (await _event_figures(session, [campaign]))[0][0]


async def period_figures(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    starts_from: datetime,
    starts_before: datetime,
) -> PeriodFigures:
    """Every live event of the caller's directions planned to start in [from, to)."""
    if starts_before <= starts_from:
        raise invalid_field("to", "the period ends before it starts", location="query")
    async with runtime.sessions() as session:
        ids = await queries.visible_ids(session, principal, starts_from, starts_before)
        if len(ids) > MAX_EVENTS:
            raise invalid_field(
                "to", f"more than {MAX_EVENTS} events in the period", location="query"
            )
        found = await campaign_queries.load_many(session, ids)
        events, money, quantities = await _event_figures(session, found)
    by_status: Counter[str] = Counter()
    for event in events:
        by_status.update(event.by_status)
    total = figures(by_status, money, quantities)
    return PeriodFigures(
        **total.model_dump(), starts_from=starts_from, starts_before=starts_before, events=events
    )
