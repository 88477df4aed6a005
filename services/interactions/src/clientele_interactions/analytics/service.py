"""Analytics operations: read-only aggregates of the contact log in the caller's directions."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import ServiceRuntime

from clientele_interactions.analytics import queries
from clientele_interactions.analytics.rules import (
    ContactsRow,
    EmployeeCount,
    OrganizationContacts,
    Overdue,
    PeriodCount,
    Totals,
    Workload,
    checked_interval,
)


async def contacts_by_employee(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    since: datetime,
    until: datetime,
    period: str,
    tz: str,
    employee_id: uuid.UUID | None,
) -> list[ContactsRow]:
    """Contacts that happened, per period, responsible employee, kind and result."""
    tz = checked_interval(since, until, tz)
    async with runtime.sessions() as session:
        rows = await queries.contacts(
            session,
            principal,
            since=since,
            until=until,
            period=period,
            tz=tz,
            employee_id=employee_id,
        )
    return [ContactsRow.model_validate(row, from_attributes=True) for row in rows]


async def totals(
    *, runtime: ServiceRuntime, principal: Principal, since: datetime, until: datetime
) -> Totals:
    """All contacts with counterparties in the interval: how many, with how many clients."""
    checked_interval(since, until, "UTC")
    async with runtime.sessions() as session:
        contacts, clients, kinds, directions = await queries.totals(
            session, principal, since=since, until=until
        )
    return Totals(contacts=contacts, organizations=clients, by_kind=kinds, by_direction=directions)


async def overdue(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    now: datetime,
    since: datetime | None,
    until: datetime | None,
    period: str,
    tz: str,
) -> Overdue:
    """Overdue planned contacts now, per responsible employee, and how many became overdue per
    period over time (default: the last 90 days)."""
    until = until or now
    since = since or until - timedelta(days=90)
    tz = checked_interval(since, until, tz)
    async with runtime.sessions() as session:
        employees = await queries.overdue_by_employee(session, principal, now)
        history = await queries.overdue_over_time(
            session, principal, since=since, until=until, period=period, tz=tz
        )
    by_employee = [EmployeeCount.model_validate(row, from_attributes=True) for row in employees]
    return Overdue(
        now=sum(item.count for item in by_employee),
        by_employee=by_employee,
        over_time=[PeriodCount.model_validate(row, from_attributes=True) for row in history],
    )


async def meetings_workload(
    *, runtime: ServiceRuntime, principal: Principal, since: datetime, until: datetime
) -> list[Workload]:
    """Planned against held meetings per employee (workload)."""
    checked_interval(since, until, "UTC")
    async with runtime.sessions() as session:
        rows = await queries.meetings(session, principal, since=since, until=until)
    return [
        Workload.model_validate(row, from_attributes=True)
        for row in rows
        if row.planned or row.held
    ]


async def contacts_by_organization(
    *, runtime: ServiceRuntime, principal: Principal, since: datetime, until: datetime, limit: int
) -> list[OrganizationContacts]:
    """Contacts per client in the interval, the most contacted first."""
    checked_interval(since, until, "UTC")
    async with runtime.sessions() as session:
        rows = await queries.organizations(
            session, principal, since=since, until=until, limit=limit
        )
    return [OrganizationContacts.model_validate(row, from_attributes=True) for row in rows]
