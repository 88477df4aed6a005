"""The shared address book as vCard and the planned meetings of an employee as iCalendar."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from fastapi import APIRouter, Query, Response
from sqlalchemy import and_, exists, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.api.common import ClockDep, Runtime
from clientele_interactions.domain.exports import (
    Contact,
    Meeting,
    VCardVersion,
    meetings_calendar,
    vcards,
)
from clientele_interactions.domain.people import full_name
from clientele_interactions.domain.rules import is_overdue
from clientele_interactions.operations import visible_clients
from clientele_interactions.store import client_cards, employments, interactions, persons

router = APIRouter(tags=["address book and calendar"])
VCARD = "text/vcard; charset=utf-8"
ICALENDAR = "text/calendar; charset=utf-8"


@router.get(
    "/v1/persons.vcf",
    response_class=Response,
    responses={200: {"content": {"text/vcard": {}}, "description": "vCard file"}},
)
async def export_persons(
    principal: CurrentPrincipal,
    runtime: Runtime,
    clock: ClockDep,
    version: Annotated[VCardVersion, Query(description="vCard version (Outlook: 3.0)")] = "3.0",
    organization_id: Annotated[uuid.UUID | None, Query(description="one client's people")] = None,
) -> Response:
    """The persons visible to the caller (through their own directions or a position at a
    visible client) as vCards, importable into Outlook; with the position at a visible client."""
    today = clock.now().date()
    visible_job = and_(
        employments.c.person_id == persons.c.person_id,
        ~employments.c.deleted,
        or_(employments.c.until.is_(None), employments.c.until >= today),
        visible_clients(principal),
    )
    job_query = (
        select(client_cards.c.legal_name, client_cards.c.short_name, employments.c.position)
        .join(employments, employments.c.organization_id == client_cards.c.organization_id)
        .where(visible_job)
    )
    if organization_id is not None:
        job_query = job_query.where(employments.c.organization_id == organization_id)
    job = job_query.order_by(client_cards.c.legal_name).limit(1).lateral("job")
    at_client = exists(
        select(employments.c.employment_id)
        .join(client_cards, client_cards.c.organization_id == employments.c.organization_id)
        .where(visible_job)
    )
    stmt = (
        select(persons, job.c.legal_name, job.c.short_name, job.c.position)
        .outerjoin(job, true())
        .where(~persons.c.deleted)
        .order_by(persons.c.last_name, persons.c.first_name, persons.c.person_id)
    )
    if organization_id is not None:
        stmt = stmt.where(job.c.legal_name.is_not(None))
    else:
        stmt = stmt.where(or_(visible_to(principal, persons.c.directions), at_client))
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    contacts = [
        Contact(
            person_id=row.person_id,
            last_name=row.last_name,
            first_name=row.first_name,
            middle_name=row.middle_name,
            full_name=full_name(dict(row._mapping)),
            emails=list(row.emails),
            phones=list(row.phones),
            organization=row.short_name or row.legal_name,
            position=row.position,
            updated_at=row.updated_at,
        )
        for row in rows
    ]
    return Response(
        vcards(contacts, version),
        media_type=VCARD,
        headers={"Content-Disposition": 'attachment; filename="clientele-contacts.vcf"'},
    )


@router.get(
    "/v1/employees/{employee_id}/meetings.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}},
)
async def meetings_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime, clock: ClockDep
) -> Response:
    """The employee's planned meetings at clients visible to the caller, as an iCalendar feed
    (calendar clients that cannot send a token use a secret feed URL: ``/calendar-feed``)."""
    async with runtime.sessions() as session:
        calendar = await meetings_of(session, principal, employee_id, clock.now())
    return Response(calendar, media_type=ICALENDAR)


async def meetings_of(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID, now: datetime
) -> bytes:
    """The employee's planned meetings at clients visible to ``principal`` as iCalendar."""
    stmt = (
        select(interactions, client_cards.c.legal_name, client_cards.c.short_name)
        .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(
            interactions.c.responsible_employee_id == employee_id,
            interactions.c.kind == "meeting",
            interactions.c.status == "planned",
            visible_clients(principal),
        )
        .order_by(interactions.c.due_at, interactions.c.id)
        .limit(5000)
    )
    rows = (await session.execute(stmt)).all()
    meetings = [
        Meeting(
            interaction_id=row.id,
            subject=row.subject,
            client=row.short_name or row.legal_name,
            starts_at=row.due_at,
            duration_seconds=row.duration_seconds,
            notes=row.notes,
            version=row.version,
            updated_at=row.updated_at,
            overdue=is_overdue(row.status, row.due_at, now),
        )
        for row in rows
    ]
    return meetings_calendar(employee_id, meetings, now)
