"""HTTP of the effectiveness figures (JSON): one event, or the caller's events of a period."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from clientele_campaigns.effectiveness import service
from clientele_campaigns.effectiveness.rules import EventFigures, PeriodFigures

router = APIRouter(tags=["effectiveness"])


@router.get("/v1/campaigns/{campaign_id}/effectiveness")
async def event_figures(
    campaign_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> EventFigures:
    """Participants by status and stage, costs per participant and attendee, consumables."""
    return await service.event_figures(
        runtime=runtime, principal=principal, campaign_id=campaign_id
    )


@router.get("/v1/effectiveness")
async def period_figures(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    starts_from: Annotated[AwareDatetime, Query(alias="from")],
    starts_before: Annotated[AwareDatetime, Query(alias="to")],
) -> PeriodFigures:
    """The same over every event of the caller's directions planned to start in [from, to),
    totalled, and each event's own figures."""
    return await service.period_figures(
        runtime=runtime, principal=principal, starts_from=starts_from, starts_before=starts_before
    )
