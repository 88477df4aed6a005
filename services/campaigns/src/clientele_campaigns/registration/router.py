"""HTTP of registration: the public form (no token), the staff's list and check-in."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Request, Response, status

from clientele_campaigns.registration import service
from clientele_campaigns.registration.rules import (
    CheckIn,
    Registration,
    RegistrationForm,
    RegistrationStatus,
    Ticket,
)

router = APIRouter(tags=["registration"])


@router.post(
    "/v1/public/campaigns/{campaign_id}/registrations", status_code=status.HTTP_201_CREATED
)
async def register(
    campaign_id: uuid.UUID,
    form: RegistrationForm,
    request: Request,
    response: Response,
    runtime: CurrentRuntime,
) -> Ticket:
    """Register for an event open to registration (no token; rate-limited per address): the
    answer carries the ticket code to show at the entrance, also sent by e-mail; an address
    already registered gets 200 with its registration and no code."""
    host = request.client.host if request.client else "unknown"
    ticket, created = await service.register(
        runtime=runtime, campaign_id=campaign_id, form=form, host=host
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return ticket


@router.get("/v1/campaigns/{campaign_id}/registrations")
async def list_registrations(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    status: RegistrationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[Registration]:
    """Registrations in order; ``status=review`` those a person has to match."""
    return await service.list_registrations(
        runtime=runtime, principal=principal, campaign_id=campaign_id, status=status, limit=limit
    )


@router.post("/v1/campaigns/{campaign_id}/check-in")
async def check_in(
    campaign_id: uuid.UUID, ticket: CheckIn, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Registration:
    """The ticket code read at the entrance: its holder checked in, attendance marked."""
    return await service.check_in(
        runtime=runtime, principal=principal, campaign_id=campaign_id, code=ticket.code
    )
