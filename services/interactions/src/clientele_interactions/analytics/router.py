"""HTTP of the analytics of the contact log, always within the caller's directions.

Periods are calendar periods in the requested time zone (``tz``, default UTC); ``from``/``to``
bound a half-open interval ``[from, to)`` of at most three years.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from clientele_interactions.analytics import service
from clientele_interactions.analytics.rules import (
    ContactsRow,
    OrganizationContacts,
    Overdue,
    Period,
    Totals,
    Workload,
)
from clientele_interactions.dependencies import ClockDep

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

From = Annotated[AwareDatetime, Query(alias="from", description="start (inclusive)")]
To = Annotated[AwareDatetime, Query(alias="to", description="end (exclusive)")]
TimeZone = Annotated[str, Query(max_length=64, description="IANA zone of the periods")]


@router.get("/contacts")
async def contacts_by_employee(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    since: From,
    until: To,
    period: Period = "month",
    tz: TimeZone = "UTC",
    employee_id: uuid.UUID | None = None,
) -> list[ContactsRow]:
    """Contacts that happened, per period, responsible employee, kind and result."""
    return await service.contacts_by_employee(
        runtime=runtime,
        principal=principal,
        since=since,
        until=until,
        period=period,
        tz=tz,
        employee_id=employee_id,
    )


@router.get("/totals")
async def totals(
    principal: CurrentPrincipal, runtime: CurrentRuntime, since: From, until: To
) -> Totals:
    """All contacts with counterparties in the interval: how many, with how many clients."""
    return await service.totals(runtime=runtime, principal=principal, since=since, until=until)


@router.get("/overdue")
async def overdue(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    clock: ClockDep,
    since: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    period: Period = "week",
    tz: TimeZone = "UTC",
) -> Overdue:
    """Overdue planned contacts now, per responsible employee, and how many became overdue per
    period over time (default: the last 90 days)."""
    return await service.overdue(
        runtime=runtime,
        principal=principal,
        now=clock.now(),
        since=since,
        until=until,
        period=period,
        tz=tz,
    )


@router.get("/meetings")
async def meetings_workload(
    principal: CurrentPrincipal, runtime: CurrentRuntime, since: From, until: To
) -> list[Workload]:
    """Planned against held meetings per employee (workload)."""
    return await service.meetings_workload(
        runtime=runtime, principal=principal, since=since, until=until
    )


@router.get("/organizations")
async def contacts_by_organization(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    since: From,
    until: To,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[OrganizationContacts]:
    """Contacts per client in the interval, the most contacted first."""
    return await service.contacts_by_organization(
        runtime=runtime, principal=principal, since=since, until=until, limit=limit
    )
