"""SQL of the sales report: aggregates over the stage history and the deals, in the database."""

from __future__ import annotations

import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.interactions import InteractionSnapshot
from sqlalchemy import Date, Numeric, and_, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_pipeline.analytics.rules import Days, Span, Window, split
from clientele_pipeline.tables import (
    deal_contacts,
    deal_stage_history,
    deals,
    employees,
    funnel_totals,
    stage_stay_totals,
    stages,
)

h, s, d = deal_stage_history, stages, deals
DAY = 86_400.0


async def record_contact(session: AsyncSession, contact: InteractionSnapshot) -> None:
    await session.execute(
        insert(deal_contacts)
        .values(
            interaction_id=contact.interaction_id,
            deal_id=contact.deal_id,
            organization_id=contact.organization_id,
            occurred_at=contact.occurred_at,
        )
        .on_conflict_do_nothing()
    )


def _shown(principal: Principal, pipeline_ids: list[uuid.UUID]) -> ColumnElement[bool]:
    """Live deals of the pipelines, whose client is not deleted, in the caller's directions."""
    return and_(
        d.c.pipeline_id.in_(pipeline_ids),
        d.c.deleted_at.is_(None),
        ~d.c.client_hidden,
        visible_to(principal, d.c.directions),
    )


def _period(window: Window, column: Any) -> Any:
    """The first day of the period a moment falls in, in the report's time zone."""
    local = func.timezone(literal(window.zone.key), column)
    return cast(func.date_trunc(literal(window.period), local), Date)


def _spans(column: Any, spans: list[Span]) -> ColumnElement[bool]:
    return or_(*(and_(column >= since, column < until) for since, until in spans))


async def reached_in_history(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], spans: list[Span]
) -> dict[uuid.UUID, Counter[int]]:
    """Per pipeline: how many deals created in the spans got at most as far as each position
    (the furthest open or won stage each entered), from the stage history."""
    found: dict[uuid.UUID, Counter[int]] = {}
    if not spans:
        return found
    furthest = (
        select(h.c.pipeline_id, func.max(s.c.position).label("position"))
        .join(s, s.c.id == h.c.to_stage_id)
        .join(d, d.c.id == h.c.deal_id)
        .where(s.c.kind.in_(("open", "won")), _spans(d.c.created_at, spans), _shown(principal, ids))
        .group_by(h.c.deal_id, h.c.pipeline_id)
        .subquery()
    )
    rows = await session.execute(
        select(furthest.c.pipeline_id, furthest.c.position, func.count()).group_by(
            furthest.c.pipeline_id, furthest.c.position
        )
    )
    for pipeline_id, position, count in rows:
        found.setdefault(pipeline_id, Counter())[position] = count
    return found


async def reached_in_totals(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], days: Days
) -> dict[uuid.UUID, Counter[int]]:
    """The same over the deals created in whole UTC days, from ``funnel_totals``."""
    f = funnel_totals
    count = func.sum(f.c.deals)
    rows = await session.execute(
        select(f.c.pipeline_id, s.c.position, count)
        .join(s, s.c.id == f.c.stage_id)
        .where(
            f.c.pipeline_id.in_(ids),
            f.c.day >= days[0],
            f.c.day < days[1],
            visible_to(principal, f.c.directions),
        )
        .group_by(f.c.pipeline_id, s.c.position)
        .having(count != 0)
    )
    found: dict[uuid.UUID, Counter[int]] = {}
    for pipeline_id, position, n in rows:
        found.setdefault(pipeline_id, Counter())[position] = int(n)
    return found


async def reached(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: Window
) -> dict[uuid.UUID, Counter[int]]:
    """Per pipeline and position, the funnel of the deals created in the window: whole UTC days
    from the totals, the partial days at its edges from the history (ADR 44)."""
    days, edges = split(window.start, window.end)
    found = await reached_in_history(session, principal, ids, edges)
    if days is not None:
        for pipeline_id, counts in (await reached_in_totals(session, principal, ids, days)).items():
            found.setdefault(pipeline_id, Counter()).update(counts)
    return found


async def stays_in_history(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], spans: list[Span]
) -> dict[uuid.UUID, tuple[int, Decimal]]:
    """Per stage: the stays that ended in the spans, and their summed length in seconds, from
    the stage history."""
    if not spans:
        return {}
    length = func.extract("epoch", h.c.moved_at - h.c.from_entered_at)
    rows = await session.execute(
        select(h.c.from_stage_id, func.count(), func.sum(length))
        .join(d, d.c.id == h.c.deal_id)
        .where(
            h.c.from_stage_id.is_not(None),
            h.c.from_entered_at.is_not(None),
            h.c.pipeline_id.in_(ids),
            _spans(h.c.moved_at, spans),
            _shown(principal, ids),
        )
        .group_by(h.c.from_stage_id)
    )
    return {stage: (count, Decimal(seconds)) for stage, count, seconds in rows}


async def stays_in_totals(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], days: Days
) -> dict[uuid.UUID, tuple[int, Decimal]]:
    """The same over whole UTC days, from ``stage_stay_totals``."""
    t = stage_stay_totals
    count = func.sum(t.c.stays)
    rows = await session.execute(
        select(t.c.stage_id, count, func.sum(t.c.seconds))
        .where(
            t.c.pipeline_id.in_(ids),
            t.c.day >= days[0],
            t.c.day < days[1],
            visible_to(principal, t.c.directions),
        )
        .group_by(t.c.stage_id)
        .having(count != 0)
    )
    return {stage: (int(n), Decimal(seconds)) for stage, n, seconds in rows}


async def stays(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: Window
) -> dict[uuid.UUID, tuple[int, float]]:
    """Per stage: the stays that ended in the window, and their average length in days (whole
    UTC days from the totals, the edges from the history)."""
    days, edges = split(window.start, window.end)
    found = await stays_in_history(session, principal, ids, edges)
    if days is not None:
        for stage, (n, seconds) in (await stays_in_totals(session, principal, ids, days)).items():
            before, summed = found.get(stage, (0, Decimal(0)))
            found[stage] = (before + n, summed + seconds)
    return {stage: (n, float(seconds / n) / DAY) for stage, (n, seconds) in found.items() if n}


def _won(
    principal: Principal, ids: list[uuid.UUID], window: Window, won_stages: list[uuid.UUID]
) -> Any:
    """Deals won now whose last win lies in the window, with its time."""
    last_win = (  # the entries into won stages only (ix_deal_stage_history_to_stage)
        select(h.c.deal_id, func.max(h.c.moved_at).label("won_at"))
        .where(h.c.to_stage_id.in_(won_stages), h.c.moved_at < window.end)
        .group_by(h.c.deal_id)
        .subquery()
    )
    return (
        select(
            d.c.id,
            d.c.responsible_employee_id,
            d.c.currency,
            d.c.amount,
            d.c.created_at,
            last_win.c.won_at,
        )
        .join(last_win, last_win.c.deal_id == d.c.id)
        .where(d.c.status == "won", last_win.c.won_at >= window.start, _shown(principal, ids))
        .subquery()
    )


async def won(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: Window
) -> tuple[list[dict[str, Any]], int, float | None, float | None]:
    """Won deals per employee, period and currency; their number; the average cycle in days;
    the average number of contacts about each."""
    # the won stages' ids as values: the planner then reads their entries by the index
    won_stages = list(
        await session.scalars(select(s.c.id).where(s.c.pipeline_id.in_(ids), s.c.kind == "won"))
    )
    wins = _won(principal, ids, window, won_stages)
    period = _period(window, wins.c.won_at)
    contacts = (
        select(deal_contacts.c.deal_id, func.count().label("n"))
        .group_by(deal_contacts.c.deal_id)
        .subquery()
    )
    cycle = func.extract("epoch", wins.c.won_at - wins.c.created_at)
    rows = (
        await session.execute(  # one pass over the wins: the totals are summed from the groups
            select(
                wins.c.responsible_employee_id.label("employee_id"),
                employees.c.name.label("employee_name"),
                period.label("period"),
                wins.c.currency,
                func.count().label("count"),
                func.coalesce(func.sum(wins.c.amount), 0).label("amount"),
                func.sum(cycle).label("cycle"),
                func.sum(func.coalesce(contacts.c.n, 0)).label("contacts"),
            )
            .outerjoin(employees, employees.c.employee_id == wins.c.responsible_employee_id)
            .outerjoin(contacts, contacts.c.deal_id == wins.c.id)
            .group_by(wins.c.responsible_employee_id, employees.c.name, period, wins.c.currency)
            .order_by(period, employees.c.name, wins.c.currency)
        )
    ).mappings()
    by_employee, total, seconds, contacted = [], 0, Decimal(0), Decimal(0)
    for row in rows:
        found = dict(row)
        total += found["count"]
        seconds += found.pop("cycle")
        contacted += found.pop("contacts")
        by_employee.append(found)
    if not total:
        return by_employee, 0, None, None
    return (
        by_employee,
        total,
        round(float(seconds / total) / DAY, 2),
        round(float(contacted / total), 2),
    )


async def monitoring(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Open deals now in a monitoring stage, per pipeline."""
    rows = await session.execute(
        select(d.c.pipeline_id, func.count())
        .join(s, and_(s.c.id == d.c.stage_id, s.c.kind == "monitoring"))
        .where(d.c.status == "open", _shown(principal, ids))
        .group_by(d.c.pipeline_id)
    )
    return {pipeline_id: int(count) for pipeline_id, count in rows}


async def forecast(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: Window
) -> list[dict[str, Any]]:
    """Open deals expected to close in the window, amount x probability, per period."""
    period = cast(func.date_trunc(literal(window.period), d.c.expected_close_date), Date)
    weighted = func.round(func.sum(d.c.amount * s.c.probability / cast(literal(100), Numeric)), 2)
    rows = (
        await session.execute(
            select(
                period.label("period"),
                d.c.currency,
                func.count().label("deals"),
                weighted.label("amount"),
            )
            .join(s, s.c.id == d.c.stage_id)
            .where(
                d.c.status == "open",
                s.c.kind == "open",
                d.c.amount.is_not(None),
                d.c.expected_close_date >= window.date_from,
                d.c.expected_close_date <= window.date_to,
                _shown(principal, ids),
            )
            .group_by(period, d.c.currency)
            .order_by(period, d.c.currency)
        )
    ).mappings()
    return [dict(row) for row in rows]
