"""HTTP of hand-overs (heads of sales, admins)."""

from __future__ import annotations

from datetime import timedelta

from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Response, status

from clientele_interactions.dependencies import ClockDep, Manager, Settings
from clientele_interactions.handovers import service
from clientele_interactions.handovers.rules import Handover, HandoverRequest

router = APIRouter(prefix="/v1/handovers", tags=["hand-over"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def hand_over(
    request: HandoverRequest,
    principal: Manager,
    runtime: CurrentRuntime,
    settings: Settings,
    clock: ClockDep,
    response: Response,
) -> Handover:
    """Move every open planned contact of ``from_employee_id`` to ``to_employee_id`` (heads of
    sales, admins). With ``organization_id``: that client's only (404/403 as for writing about
    it); without: all clients the caller may see. Each contact gets a new version, an audit
    entry and an ``interaction.handed_over`` event, and its reminder goes to the new employee;
    each client an ``interactions.responsibility.handed_over`` event. History stays intact:
    done and cancelled contacts keep who was responsible. ``to_employee_id`` must be an active
    employee of a direction the caller sees (422 otherwise, the same for an unknown one)."""
    handover = await service.hand_over(
        runtime=runtime,
        principal=principal,
        request=request,
        now=clock.now(),
        reminder_lead=timedelta(minutes=settings.reminder_lead_minutes),
    )
    response.headers["Location"] = f"/v1/handovers/{handover.id}"
    return handover
