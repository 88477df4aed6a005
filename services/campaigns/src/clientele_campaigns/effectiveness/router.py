"""HTTP of the effectiveness figures (JSON): one event, or the caller's events of a period."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime, ServiceRuntime
from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime

from clientele_campaigns.effectiveness import service, spreadsheet
from clientele_campaigns.effectiveness.rules import EventFigures, PeriodFigures
from clientele_campaigns.settings import CampaignsSettings

router = APIRouter(tags=["effectiveness"])
AttributionDays = Annotated[
    int | None,
    Query(
        ge=0,
        le=3650,
        description="days after an event in which a participant's new deal is attributed to it "
        "(default DEAL_ATTRIBUTION_DAYS)",
    ),
]


def _window(runtime: ServiceRuntime, days: int | None) -> timedelta:
    settings = runtime.settings
    assert isinstance(settings, CampaignsSettings)
    return timedelta(days=settings.deal_attribution_days if days is None else days)


@router.get("/v1/campaigns/{campaign_id}/effectiveness")
async def event_figures(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    attribution_days: AttributionDays = None,
) -> EventFigures:
    """Participants by status and stage, costs per participant and attendee, consumables,
    attributed deals and conversion."""
    return await service.event_figures(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        window=_window(runtime, attribution_days),
    )


@router.get("/v1/effectiveness")
async def period_figures(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    starts_from: Annotated[AwareDatetime, Query(alias="from")],
    starts_before: Annotated[AwareDatetime, Query(alias="to")],
    attribution_days: AttributionDays = None,
) -> PeriodFigures:
    """The same over every event of the caller's directions planned to start in [from, to),
    totalled, and each event's own figures."""
    return await service.period_figures(
        runtime=runtime,
        principal=principal,
        starts_from=starts_from,
        starts_before=starts_before,
        window=_window(runtime, attribution_days),
    )


def _xlsx(data: bytes, name: str) -> Response:
    return Response(
        data,
        media_type=spreadsheet.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


@router.get(
    "/v1/campaigns/{campaign_id}/effectiveness.xlsx",
    response_class=Response,
    responses={200: {"content": {spreadsheet.MEDIA_TYPE: {}}}},
)
async def event_workbook(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    attribution_days: AttributionDays = None,
) -> Response:
    """The event's figures as an .xlsx (numbers as numbers)."""
    data = await service.event_workbook(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        window=_window(runtime, attribution_days),
    )
    return _xlsx(data, f"effectiveness-{campaign_id}")


@router.get(
    "/v1/effectiveness.xlsx",
    response_class=Response,
    responses={200: {"content": {spreadsheet.MEDIA_TYPE: {}}}},
)
async def period_workbook(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    starts_from: Annotated[AwareDatetime, Query(alias="from")],
    starts_before: Annotated[AwareDatetime, Query(alias="to")],
    attribution_days: AttributionDays = None,
) -> Response:
    """The period's figures as an .xlsx: each event's and their total."""
    data = await service.period_workbook(
        runtime=runtime,
        principal=principal,
        starts_from=starts_from,
        starts_before=starts_before,
        window=_window(runtime, attribution_days),
    )
    return _xlsx(data, f"effectiveness-{starts_from:%Y%m%d}-{starts_before:%Y%m%d}")
