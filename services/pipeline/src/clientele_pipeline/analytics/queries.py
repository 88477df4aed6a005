"""SQL of the sales report: aggregates over the stage history and the deals, in the database."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.interactions import InteractionSnapshot
from sqlalchemy import Date, Numeric, and_, cast, func, literal, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_pipeline.analytics.rules import Window
from clientele_pipeline.tables import deal_contacts, deal_stage_history, deals, employees, stages

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


async def reached(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: Window
) -> dict[uuid.UUID, dict[int, int]]:
    """Per pipeline: how many deals created in the window got at most as far as each position
    (the furthest open or won stage each entered)."""
    furthest = (
        select(h.c.pipeline_id, func.max(s.c.position).label("position"))
        .join(s, s.c.id == h.c.to_stage_id)
        .join(d, d.c.id == h.c.deal_id)
        .where(
            s.c.kind.in_(("open", "won")),
            d.c.created_at >= window.start,
            d.c.created_at < window.end,
            _shown(principal, ids),
        )
        .group_by(h.c.deal_id, h.c.pipeline_id)
        .subquery()
    )
    rows = await session.execute(
        select(furthest.c.pipeline_id, furthest.c.position, func.count()).group_by(
            furthest.c.pipeline_id, furthest.c.position
        )
    )
    found: dict[uuid.UUID, dict[int, int]] = {}
    for pipeline_id, position, count in rows:
        found.setdefault(pipeline_id, {})[position] = count
    return found


async def stays(
    session: AsyncSession, principal: Principal, ids: list[uuid.UUID], window: Window
) -> dict[uuid.UUID, tuple[int, float]]:
    """Per stage: the stays that ended in the window, and their average length in days."""
    length = func.extract("epoch", h.c.moved_at - h.c.from_entered_at)
    rows = await session.execute(
        select(h.c.from_stage_id, func.count(), func.avg(length))
        .join(d, d.c.id == h.c.deal_id)
        .where(
            h.c.from_stage_id.is_not(None),
            h.c.from_entered_at.is_not(None),
            h.c.moved_at >= window.start,
            h.c.moved_at < window.end,
            _shown(principal, ids),
        )
        .group_by(h.c.from_stage_id)
    )
    return {stage: (count, float(seconds) / DAY) for stage, count, seconds in rows}


def _won(principal: Principal, ids: list[uuid.UUID], window: Window) -> Any:
    """Deals won now whose last win lies in the window, with its time."""
    won_stages = select(s.c.id).where(s.c.pipeline_id.in_(ids), s.c.kind == "won")
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
    wins = _won(principal, ids, window)
    period = _period(window, wins.c.won_at)
    rows = (
        await session.execute(
            select(
                wins.c.responsible_employee_id.label("employee_id"),
                employees.c.name.label("employee_name"),
                period.label("period"),
                wins.c.currency,
                func.count().label("count"),
                func.coalesce(func.sum(wins.c.amount), 0).label("amount"),
            )
            .outerjoin(employees, employees.c.employee_id == wins.c.responsible_employee_id)
            .group_by(wins.c.responsible_employee_id, employees.c.name, period, wins.c.currency)
            .order_by(period, employees.c.name, wins.c.currency)
        )
    ).mappings()
    by_employee = [dict(row) for row in rows]
    contacts = (
        select(deal_contacts.c.deal_id, func.count().label("n"))
        .group_by(deal_contacts.c.deal_id)
        .subquery()
    )
    cycle = func.extract("epoch", wins.c.won_at - wins.c.created_at)
    total, seconds, per_deal = (
        await session.execute(
            select(func.count(), func.avg(cycle), func.avg(func.coalesce(contacts.c.n, 0)))
            .select_from(wins)
            .outerjoin(contacts, contacts.c.deal_id == wins.c.id)
        )
    ).one()
    return (
        by_employee,
        total,
        None if seconds is None else round(float(seconds) / DAY, 2),
        None if per_deal is None else round(float(per_deal), 2),
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
