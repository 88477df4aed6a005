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
    Figures,
    KindFigures,
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


class Sources:
    """What figures over one or several events are computed from: their participants by
    status, money, quantities and attributed deals, and the participations and conversions
    summed per event."""

    def __init__(self) -> None:
        self.by_status: Counter[str] = Counter()
        self.money: list[Money] = []
        self.quantities: list[Quantity] = []
        self.deals: list[AttributedDeal] = []
        self.participating = 0
        self.converted = 0

    def add(self, other: Sources) -> None:
        self.by_status.update(other.by_status)
        self.money += other.money
        self.quantities += other.quantities
        self.deals += other.deals
        self.participating += other.participating
        self.converted += other.converted

    def figures(self) -> Figures:
        """The figures (a deal attributed to several of the events counts once)."""
        deals = deal_figures(self.deals, self.participating, self.converted)
        return figures(self.by_status, self.money, self.quantities, deals)


async def _event_figures(
    session: AsyncSession, principal: Principal, found: list[Campaign], window: timedelta
) -> list[tuple[EventFigures, Sources]]:
    """Each event's figures and what they were computed from."""
    ids = [campaign.id for campaign in found]
    counts = await queries.counts(session, ids)
    money = await queries.money(session, ids)
    quantities = await queries.quantities(session, ids)
    organizations = await queries.participating(session, ids)
    attributed = await queries.attributed(session, principal, ids, window)
    reports = []
    for campaign in found:
        sources = Sources()
        by_stage: Counter[uuid.UUID] = Counter()
        for stage_id, status, count in counts.get(campaign.id, []):
            sources.by_status[status] += count
            by_stage[stage_id] += count
        sources.money = money.get(campaign.id, [])
        sources.quantities = quantities.get(campaign.id, [])
        sources.deals = attributed.get(campaign.id, [])
        sources.participating = len(organizations.get(campaign.id, ()))
        sources.converted = converted(sources.deals, organizations.get(campaign.id, set()))
        report = EventFigures(
            **sources.figures().model_dump(),
            campaign_id=campaign.id,
            title=campaign.title,
            kind=campaign.kind,
            kind_name_ru=campaign.kind_name_ru,
            kind_name_en=campaign.kind_name_en,
            status=campaign.status,
            planned_start=campaign.planned_start,
            by_stage=[
                StageCount(stage_id=stage.id, name=stage.name, participants=by_stage[stage.id])
                for stage in campaign.stages
            ],
        )
        reports.append((report, sources))
    return reports


def _by_kind(events: list[tuple[EventFigures, Sources]]) -> list[KindFigures]:
    """The events' figures grouped by kind, by code."""
    groups: dict[str, Sources] = {}
    named: dict[str, EventFigures] = {}
    counted: Counter[str] = Counter()
    for event, sources in events:
        groups.setdefault(event.kind, Sources()).add(sources)
        named[event.kind] = event
        counted[event.kind] += 1
    return [
        KindFigures(
            **groups[code].figures().model_dump(),
            kind=code,
            kind_name_ru=named[code].kind_name_ru,
            kind_name_en=named[code].kind_name_en,
            events=counted[code],
        )
        for code in sorted(groups)
    ]


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
        events = await _event_figures(session, principal, found, window)
    total = Sources()
    for _, sources in events:
        total.add(sources)
    return PeriodFigures(
        **total.figures().model_dump(),
        starts_from=starts_from,
        starts_before=starts_before,
        by_kind=_by_kind(events),
        events=[event for event, _ in events],
    )


async def event_workbook(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, window: timedelta
) -> bytes:
    """One event's figures as an .xlsx (built off the event loop)."""
    report = await event_figures(
        runtime=runtime, principal=principal, campaign_id=campaign_id, window=window
    )
    return await asyncio.to_thread(spreadsheet.workbook, [report], None, [])


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
    return await asyncio.to_thread(spreadsheet.workbook, report.events, report, report.by_kind)
