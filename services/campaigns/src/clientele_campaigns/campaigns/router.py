"""HTTP of marketing events: parse, call the service, answer with the ETag."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime

from clientele_campaigns.campaigns import service
from clientele_campaigns.campaigns.rules import (
    Campaign,
    CampaignDraft,
    CampaignPatch,
    CampaignStatus,
)

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])


def _tagged(response: Response, campaign: Campaign) -> Campaign:
    response.headers["ETag"] = etag(campaign.version)
    return campaign


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_campaign(
    draft: CampaignDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Campaign:
    """A marketing event with its stages, in directions the caller works in (403 outside)."""
    campaign = await service.create_campaign(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"/v1/campaigns/{campaign.id}"
    return _tagged(response, campaign)


@router.get("")
async def list_campaigns(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    status: CampaignStatus | None = None,
    starts_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    starts_before: Annotated[AwareDatetime | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    deleted: Annotated[bool, Query(description="list the deleted ones instead")] = False,
) -> list[Campaign]:
    """Marketing events of the caller's directions, latest planned start first."""
    return await service.list_campaigns(
        runtime=runtime,
        principal=principal,
        deleted=deleted,
        status=status,
        starts_from=starts_from,
        starts_before=starts_before,
        limit=limit,
    )


@router.get("/{campaign_id}")
async def get_campaign(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    include_deleted: Annotated[bool, Query(description="also answer for a deleted one")] = False,
) -> Campaign:
    """One marketing event; 404 when missing, deleted or outside the caller's directions."""
    campaign = await service.get_campaign(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        include_deleted=include_deleted,
    )
    return _tagged(response, campaign)


@router.patch("/{campaign_id}")
async def update_campaign(
    campaign_id: uuid.UUID,
    patch: CampaignPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Campaign:
    """Change fields or the status (If-Match: 428 without, 412 stale; 409 a refused status)."""
    campaign = await service.update_campaign(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, campaign)


@router.delete("/{campaign_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_campaign(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete (restorable)."""
    version = await service.delete_campaign(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(version)


@router.post("/{campaign_id}/restore")
async def restore_campaign(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Campaign:
    campaign = await service.restore_campaign(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        expected=required_versions(if_match),
    )
    return _tagged(response, campaign)


@router.get("/{campaign_id}/audit")
async def campaign_audit(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0, description="entries after this entry id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Every change of the marketing event, its budget and stages: who, when, old and new."""
    return await service.campaign_audit(
        runtime=runtime, principal=principal, campaign_id=campaign_id, after=after, limit=limit
    )
