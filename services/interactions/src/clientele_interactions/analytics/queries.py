"""SQL of the analytics: aggregates of the interactions of the clients the caller sees."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from clientele_shared.auth.principal import Principal
from sqlalchemy import Row, Select, and_, case, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_interactions.tables import client_cards, interactions
from clientele_interactions.visibility import visible_clients


def _visible(stmt: Select[Any], principal: Principal) -> Select[Any]:
    return stmt.join(
        client_cards, client_cards.c.organization_id == interactions.c.organization_id
    ).where(visible_clients(principal))


def _bucket(period: str, column: Any, tz: str) -> ColumnElement[Any]:
    return func.date_trunc(literal(period), column, literal(tz))


def _held(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        interactions.c.status == "done",
        interactions.c.occurred_at >= since,
        interactions.c.occurred_at < until,
    )


async def contacts(
    session: AsyncSession,
    principal: Principal,
    *,
    since: datetime,
    until: datetime,
    period: str,
    tz: str,
    employee_id: uuid.UUID | None,
) -> list[Row[Any]]:
    """Contacts that happened, per period, responsible employee, kind and result."""
    bucket = _bucket(period, interactions.c.occurred_at, tz).label("period_start")
    stmt = _visible(
        select(
            bucket,
            interactions.c.responsible_employee_id.label("employee_id"),
            interactions.c.kind,
            interactions.c.result,
            func.count().label("contacts"),
            func.coalesce(func.sum(interactions.c.duration_seconds), 0).label("duration_seconds"),
        ).where(_held(since, until)),
        principal,
    )
    if employee_id is not None:
        stmt = stmt.where(interactions.c.responsible_employee_id == employee_id)
    stmt = stmt.group_by(
        bucket, interactions.c.responsible_employee_id, interactions.c.kind, interactions.c.result
    ).order_by(bucket, interactions.c.responsible_employee_id, interactions.c.kind)
    return list((await session.execute(stmt)).all())


async def totals(
    session: AsyncSession, principal: Principal, *, since: datetime, until: datetime
) -> tuple[int, int, dict[str, int], dict[str, int]]:
    """How many contacts with how many clients, and the contacts per kind and per direction."""
    base = (
        _visible(
            select(interactions.c.kind, interactions.c.direction, interactions.c.organization_id),
            principal,
        )
        .where(_held(since, until))
        .subquery()
    )
    count, clients = (
        await session.execute(
            select(func.count(), func.count(func.distinct(base.c.organization_id)))
        )
    ).one()
    kinds = await session.execute(select(base.c.kind, func.count()).group_by(base.c.kind))
    directions = await session.execute(
        select(base.c.direction, func.count()).group_by(base.c.direction)
    )
    return count, clients, dict(kinds.all()), dict(directions.all())


async def overdue_by_employee(
    session: AsyncSession, principal: Principal, now: datetime
) -> list[Row[Any]]:
    overdue_now = and_(interactions.c.status == "planned", interactions.c.due_at <= now)
    stmt = (
        _visible(
            select(
                interactions.c.responsible_employee_id.label("employee_id"),
                func.count().label("count"),
            ).where(overdue_now),
            principal,
        )
        .group_by(interactions.c.responsible_employee_id)
        .order_by(func.count().desc())
    )
    return list((await session.execute(stmt)).all())


async def overdue_over_time(
    session: AsyncSession,
    principal: Principal,
    *,
    since: datetime,
    until: datetime,
    period: str,
    tz: str,
) -> list[Row[Any]]:
    bucket = _bucket(period, interactions.c.overdue_at, tz).label("period_start")
    stmt = (
        _visible(
            select(bucket, func.count().label("count")).where(
                interactions.c.overdue_at >= since, interactions.c.overdue_at < until
            ),
            principal,
        )
        .group_by(bucket)
        .order_by(bucket)
    )
    return list((await session.execute(stmt)).all())


async def meetings(
    session: AsyncSession, principal: Principal, *, since: datetime, until: datetime
) -> list[Row[Any]]:
    """Meetings per employee: due in the interval, held, cancelled, still open."""
    due_in = and_(interactions.c.due_at >= since, interactions.c.due_at < until)

    def counted(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return func.count(case((condition, 1)))

    stmt = _visible(
        select(
            interactions.c.responsible_employee_id.label("employee_id"),
            counted(due_in).label("planned"),
            counted(_held(since, until)).label("held"),
            counted(and_(due_in, interactions.c.status == "cancelled")).label("cancelled"),
            counted(and_(due_in, interactions.c.status == "planned")).label("open"),
        ).where(interactions.c.kind == "meeting"),
        principal,
    )
    stmt = stmt.group_by(interactions.c.responsible_employee_id).order_by(
        interactions.c.responsible_employee_id
    )
    return list((await session.execute(stmt)).all())


async def organizations(
    session: AsyncSession, principal: Principal, *, since: datetime, until: datetime, limit: int
) -> list[Row[Any]]:
    """Contacts per client in the interval, the most contacted first."""
    stmt = _visible(
        select(
            interactions.c.organization_id,
            client_cards.c.legal_name,
            func.count().label("contacts"),
            func.max(interactions.c.occurred_at).label("last_contact_at"),
        ).where(_held(since, until)),
        principal,
    )
    stmt = (
        stmt.group_by(interactions.c.organization_id, client_cards.c.legal_name)
        .order_by(func.count().desc(), interactions.c.organization_id)
        .limit(limit)
    )
    return list((await session.execute(stmt)).all())
