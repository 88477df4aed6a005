"""HTTP of an event's budget: read it with its totals, replace its lines."""

from __future__ import annotations

import uuid

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Response

from clientele_campaigns.budget import service
from clientele_campaigns.budget.rules import Budget, BudgetDraft

router = APIRouter(prefix="/v1/campaigns/{campaign_id}/budget", tags=["budget"])


@router.get("")
async def get_budget(
    campaign_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Budget:
    """The lines and their planned and actual totals per currency (the ETag is the event's)."""
    budget = await service.get_budget(runtime=runtime, principal=principal, campaign_id=campaign_id)
    response.headers["ETag"] = etag(budget.version)
    return budget


@router.put("")
async def replace_budget(
    campaign_id: uuid.UUID,
    draft: BudgetDraft,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Budget:
    """Replace every line (If-Match of the event: 428 without, 412 stale)."""
    budget = await service.replace_budget(
        runtime=runtime,
        principal=principal,
        campaign_id=campaign_id,
        draft=draft,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(budget.version)
    return budget
