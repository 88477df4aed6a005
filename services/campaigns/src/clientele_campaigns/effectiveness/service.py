"""Effectiveness of one event and of the caller's events over a period."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import invalid_field
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.campaigns import queries as campaign_queries
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.campaigns.rules import Campaign
from clientele_campaigns.effectiveness import queries, spreadsheet
from clientele_campaigns.effectiveness.rules import (
    AttributedDeal,
    EventFigures,
    Money,
    PeriodFigures,
    Quantity,
    StageCount,
    converted,
    deal_figures,
    figures,
)

MAX_EVENTS = 5000
"""The most events one period report covers (422 beyond: ask for a shorter period)."""


class Totals:
    """What the period's totals are computed from: every event's money, quantities and
    attributed deals, and the participations and conversions summed over the events."""

    def __init__(self) -> None:
        self.money: list[Money] = []
        self.quantities: list[Quantity] = []
        self.deals: list[AttributedDeal] = []
        self.participating = 0
        self.converted = 0


async def _event_figures(
    session: AsyncSession, principal: Principal, found: list[Campaign], window: timedelta
) -> tuple[list[EventFigures], Totals]:
    """Each event's figures, and the totals' sources."""
    ids = [campaign.id for campaign in found]
    counts = await queries.counts(session, ids)
    money = await queries.money(session, ids)
    quantities = await queries.quantities(session, ids)
    organizations = await queries.participating(session, ids)
    attributed = await queries.attributed(session, principal, ids, window)
    totals = Totals()
    reports = []
    for campaign in found:
        by_status: Counter[str] = Counter()
        by_stage: Counter[uuid.UUID] = Counter()
        for stage_id, status, count in counts.get(campaign.id, []):
            by_status[status] += count
            by_stage[stage_id] += count
        deals = attributed.get(campaign.id, [])
        participating = len(organizations.get(campaign.id, ()))
        won_over = converted(deals, organizations.get(campaign.id, set()))
        totals.deals += deals
        totals.participating += participating
        totals.converted += won_over
        base = figures(
            by_status,
            money.get(campaign.id, []),
            quantities.get(campaign.id, []),
            deal_figures(deals, participating, won_over),
        )
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
    totals.money = [row for rows in money.values() for row in rows]
    totals.quantities = [row for rows in quantities.values() for row in rows]
    return reports, totals


async def event_figures(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, window: timedelta
) -> EventFigures:
    async with runtime.sessions() as session:
        campaign = await campaigns.visible_campaign(session, principal, campaign_id)
        return (await _event_figures(session, principal, [campaign], window))[0][0]


async def period_figures(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    starts_from: datetime,
    starts_before: datetime,
    window: timedelta,
) -> PeriodFigures:
    """Every live event of the caller's directions planned to start in [from, to); a deal
    attributed to several of them counts once in the totals, a conversion once per event."""
    if starts_before <= starts_from:
        raise invalid_field("to", "the period ends before it starts", location="query")
    async with runtime.sessions() as session:
        ids = await queries.visible_ids(session, principal, starts_from, starts_before)
        if len(ids) > MAX_EVENTS:
            raise invalid_field(
                "to", f"more than {MAX_EVENTS} events in the period", location="query"
            )
        found = await campaign_queries.load_many(session, ids)
        events, totals = await _event_figures(session, principal, found, window)
    by_status: Counter[str] = Counter()
    for event in events:
        by_status.update(event.by_status)
    deals = deal_figures(totals.deals, totals.participating, totals.converted)
    total = figures(by_status, totals.money, totals.quantities, deals)
    return PeriodFigures(
        **total.model_dump(), starts_from=starts_from, starts_before=starts_before, events=events
    )


async def event_workbook(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, window: timedelta
) -> bytes:
    """One event's figures as an .xlsx (built off the event loop)."""
    report = await event_figures(
        runtime=runtime, principal=principal, campaign_id=campaign_id, window=window
    )
    return await asyncio.to_thread(spreadsheet.workbook, [report], None)


async def period_workbook(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    starts_from: datetime,
    starts_before: datetime,
    window: timedelta,
) -> bytes:
    """A period's figures, each event's and their total, as an .xlsx (built off the loop)."""
    report = await period_figures(
        runtime=runtime,
        principal=principal,
        starts_from=starts_from,
        starts_before=starts_before,
        window=window,
    )
    return await asyncio.to_thread(spreadsheet.workbook, report.events, report)
