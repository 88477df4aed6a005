"""HTTP of the shared address book as vCard, the planned meetings of an employee as iCalendar,
and the secret calendar feed URLs for calendar clients that cannot send a bearer token (Outlook,
Google Calendar).

A feed shows what the employee would see: the directions and roles are read from the employees
read model at every fetch (not fixed when the token was issued), so a change in the directory
applies at once, and a deactivated employee's feed answers 404, as do revoked and rotated tokens.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Response, status

from clientele_interactions.dependencies import ClockDep
from clientele_interactions.exports import service
from clientele_interactions.exports.rules import FeedIssued, FeedRecord, VCardVersion

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
    runtime: CurrentRuntime,
    clock: ClockDep,
    version: Annotated[VCardVersion, Query(description="vCard version (Outlook: 3.0)")] = "3.0",
    organization_id: Annotated[uuid.UUID | None, Query(description="one client's people")] = None,
) -> Response:
    """The persons visible to the caller (through their own directions or a position at a
    visible client) as vCards, importable into Outlook; with the position at a visible client."""
    cards = await service.export_persons(
        runtime=runtime,
        principal=principal,
        now=clock.now(),
        version=version,
        organization_id=organization_id,
    )
    return Response(
        cards,
        media_type=VCARD,
        headers={"Content-Disposition": 'attachment; filename="clientele-contacts.vcf"'},
    )


@router.get(
    "/v1/employees/{employee_id}/meetings.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}},
)
async def meetings_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, clock: ClockDep
) -> Response:
    """The employee's planned meetings at clients visible to the caller, as an iCalendar feed
    (calendar clients that cannot send a token use a secret feed URL: ``/calendar-feed``)."""
    calendar = await service.meetings_feed(
        runtime=runtime, principal=principal, employee_id=employee_id, now=clock.now()
    )
    return Response(calendar, media_type=ICALENDAR)


@router.post("/v1/employees/{employee_id}/calendar-feed", status_code=status.HTTP_201_CREATED)
async def issue_feed(
    employee_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> FeedIssued:
    """Issue a secret iCalendar feed URL of the employee's planned meetings, replacing (and so
    revoking) the one issued before. The employee himself or an administrator."""
    issued = await service.issue_feed(runtime=runtime, principal=principal, employee_id=employee_id)
    response.headers["Cache-Control"] = "no-store"
    return issued


@router.delete("/v1/employees/{employee_id}/calendar-feed", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> None:
    """Revoke the employee's feed URL (404 when none is live)."""
    await service.revoke_feed(runtime=runtime, principal=principal, employee_id=employee_id)


@router.get("/v1/employees/{employee_id}/calendar-feed")
async def feed_history(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[FeedRecord]:
    """Every feed token issued for the employee, newest first (never the secret)."""
    return await service.feed_history(runtime=runtime, principal=principal, employee_id=employee_id)


@router.get(
    "/v1/calendar-feeds/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}},
)
async def calendar_feed(token: str, runtime: CurrentRuntime, clock: ClockDep) -> Response:
    """The employee's planned meetings as iCalendar, by the secret URL alone (no bearer
    token): those at clients the employee sees now. 404 for an unknown, revoked or rotated
    token (malformed ones too) and for a deactivated employee."""
    calendar = await service.calendar_feed(runtime=runtime, token=token, now=clock.now())
    return Response(
        calendar,
        media_type=ICALENDAR,
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )
