"""Analytics of the contact log, always within the caller's directions.

Periods are calendar periods in the requested time zone (``tz``, default UTC); ``from``/``to``
bound a half-open interval ``[from, to)`` of at most three years.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Select, and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from clientele_interactions.api.common import ClockDep, Runtime
from clientele_interactions.domain.rules import Rejected
from clientele_interactions.operations import visible_clients
from clientele_interactions.store import client_cards, interactions

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

Period = Literal["day", "week", "month", "quarter", "year"]
From = Annotated[AwareDatetime, Query(alias="from", description="start (inclusive)")]
To = Annotated[AwareDatetime, Query(alias="to", description="end (exclusive)")]
TimeZone = Annotated[str, Query(max_length=64, description="IANA zone of the periods")]
MAX_SPAN = timedelta(days=3 * 366)


def _check(since: datetime, until: datetime, tz: str) -> str:
    if until <= since:
        raise Rejected(
            [{"loc": ("query", "to"), "msg": "must be after from", "type": "value_error"}]
        )
    if until - since > MAX_SPAN:
        raise Rejected(
            [{"loc": ("query", "to"), "msg": "at most three years", "type": "value_error"}]
        )
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise Rejected(
            [{"loc": ("query", "tz"), "msg": "unknown time zone", "type": "value_error"}]
        ) from None
    return tz


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


class ContactsRow(BaseModel):
    period_start: datetime
    employee_id: uuid.UUID | None
    kind: str
    result: str | None
    contacts: int
    duration_seconds: int


@router.get("/contacts")
async def contacts_by_employee(
    principal: CurrentPrincipal,
    runtime: Runtime,
    since: From,
    until: To,
    period: Period = "month",
    tz: TimeZone = "UTC",
    employee_id: uuid.UUID | None = None,
) -> list[ContactsRow]:
    """Contacts that happened, per period, responsible employee, kind and result."""
    tz = _check(since, until, tz)
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
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [ContactsRow.model_validate(row, from_attributes=True) for row in rows]


class Totals(BaseModel):
    contacts: int
    organizations: int
    by_kind: dict[str, int]
    by_direction: dict[str, int]


@router.get("/totals")
async def totals(principal: CurrentPrincipal, runtime: Runtime, since: From, until: To) -> Totals:
    """All contacts with counterparties in the interval: how many, with how many clients."""
    _check(since, until, "UTC")
    base = (
        _visible(
            select(interactions.c.kind, interactions.c.direction, interactions.c.organization_id),
            principal,
        )
        .where(_held(since, until))
        .subquery()
    )
    async with runtime.sessions() as session:
        overall = (
            await session.execute(
                select(func.count(), func.count(func.distinct(base.c.organization_id)))
            )
        ).one()
        kinds = (
            await session.execute(select(base.c.kind, func.count()).group_by(base.c.kind))
        ).all()
        directions = (
            await session.execute(select(base.c.direction, func.count()).group_by(base.c.direction))
        ).all()
    return Totals(
        contacts=overall[0],
        organizations=overall[1],
        by_kind=dict(kinds),
        by_direction=dict(directions),
    )


class EmployeeCount(BaseModel):
    employee_id: uuid.UUID | None
    count: int


class PeriodCount(BaseModel):
    period_start: datetime
    count: int


class Overdue(BaseModel):
    now: int
    by_employee: list[EmployeeCount]
    over_time: list[PeriodCount]
    """Contacts that became overdue, per period (by when the worker found them overdue)."""


@router.get("/overdue")
async def overdue(
    principal: CurrentPrincipal,
    runtime: Runtime,
    clock: ClockDep,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    period: Period = "week",
    tz: TimeZone = "UTC",
) -> Overdue:
    """Overdue planned contacts now, per responsible employee, and how many became overdue per
    period over time (default: the last 90 days)."""
    now = clock.now()
    until = until or now
    since = since or until - timedelta(days=90)
    tz = _check(since, until, tz)
    overdue_now = and_(interactions.c.status == "planned", interactions.c.due_at <= now)
    bucket = _bucket(period, interactions.c.overdue_at, tz).label("period_start")
    async with runtime.sessions() as session:
        employees = (
            await session.execute(
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
        ).all()
        history = (
            await session.execute(
                _visible(
                    select(bucket, func.count().label("count")).where(
                        interactions.c.overdue_at >= since, interactions.c.overdue_at < until
                    ),
                    principal,
                )
                .group_by(bucket)
                .order_by(bucket)
            )
        ).all()
    by_employee = [EmployeeCount.model_validate(row, from_attributes=True) for row in employees]
    return Overdue(
        now=sum(item.count for item in by_employee),
        by_employee=by_employee,
        over_time=[PeriodCount.model_validate(row, from_attributes=True) for row in history],
    )


class Workload(BaseModel):
    employee_id: uuid.UUID | None
    planned: int
    """Meetings due in the interval (whatever became of them)."""
    held: int
    """Meetings that took place in the interval."""
    cancelled: int
    open: int
    """Meetings due in the interval still planned."""


@router.get("/meetings")
async def meetings_workload(
    principal: CurrentPrincipal, runtime: Runtime, since: From, until: To
) -> list[Workload]:
    """Planned against held meetings per employee (workload)."""
    _check(since, until, "UTC")
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
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [
        Workload.model_validate(row, from_attributes=True)
        for row in rows
        if row.planned or row.held
    ]


class OrganizationContacts(BaseModel):
    organization_id: uuid.UUID
    legal_name: str
    contacts: int
    last_contact_at: datetime


@router.get("/organizations")
async def contacts_by_organization(
    principal: CurrentPrincipal,
    runtime: Runtime,
    since: From,
    until: To,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OrganizationContacts]:
    """Contacts per client in the interval, the most contacted first."""
    _check(since, until, "UTC")
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
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [OrganizationContacts.model_validate(row, from_attributes=True) for row in rows]
