"""HTTP of list resolutions: add a directory list's members to an event, see what was kept."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Request, status

from clientele_campaigns.lists import service
from clientele_campaigns.lists.rules import FromList, ListAddition, Resolution, ResolutionMember

router = APIRouter(prefix="/v1/campaigns/{campaign_id}/list-resolutions", tags=["lists"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_from_list(
    campaign_id: uuid.UUID,
    request: FromList,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    http: Request,
) -> ListAddition:
    """Resolve a directory list now (a dynamic one by the directory, as the caller) and add
    its members; the resolution is kept."""
    return await service.add_from_list(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        request=request,
        authorization=http.headers.get("authorization", ""),
    )


@router.get("")
async def list_resolutions(
    campaign_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[Resolution]:
    return await service.list_resolutions(
        runtime=runtime, principal=principal, campaign_id=campaign_id
    )


@router.get("/{resolution_id}/members")
async def resolution_members(
    campaign_id: uuid.UUID,
    resolution_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[
        uuid.UUID | None, Query(description="the last id of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[ResolutionMember]:
    """The list's members at resolution time and what became of each."""
    return await service.resolution_members(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        resolution_id=resolution_id,
        after=after,
        limit=limit,
    )
