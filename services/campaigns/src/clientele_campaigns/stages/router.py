"""HTTP of an event's stages: add, rename or date, reorder, delete (each a new event version)."""

from __future__ import annotations

import uuid

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Response, status

from clientele_campaigns.campaigns.rules import Campaign
from clientele_campaigns.stages import service
from clientele_campaigns.stages.rules import StageDraft, StageOrder, StagePatch

router = APIRouter(prefix="/v1/campaigns/{campaign_id}/stages", tags=["stages"])


def _tagged(response: Response, campaign: Campaign) -> Campaign:
    response.headers["ETag"] = etag(campaign.version)
    return campaign


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_stage(
    campaign_id: uuid.UUID,
    draft: StageDraft,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Campaign:
    """A new stage (If-Match of the event); the event with its stages."""
    campaign = await service.add_stage(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        draft=draft,
        expected=required_versions(if_match),
    )
    return _tagged(response, campaign)


@router.put("/order")
async def reorder_stages(
    campaign_id: uuid.UUID,
    order: StageOrder,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Campaign:
    """Every live stage, in its new order."""
    campaign = await service.reorder_stages(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        order=order,
        expected=required_versions(if_match),
    )
    return _tagged(response, campaign)


@router.patch("/{stage_id}")
async def update_stage(
    campaign_id: uuid.UUID,
    stage_id: uuid.UUID,
    patch: StagePatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Campaign:
    """Rename a stage or change its due date."""
    campaign = await service.update_stage(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        stage_id=stage_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, campaign)


@router.delete("/{stage_id}")
async def delete_stage(
    campaign_id: uuid.UUID,
    stage_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Campaign:
    """Delete a stage without participants (409 while it holds some)."""
    campaign = await service.delete_stage(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        stage_id=stage_id,
        expected=required_versions(if_match),
    )
    return _tagged(response, campaign)
