"""HTTP of a deal's playbook."""

from __future__ import annotations

import uuid

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Response

from clientele_pipeline.deals.rules import Deal
from clientele_pipeline.playbooks import service
from clientele_pipeline.playbooks.rules import Playbook, Ticks

router = APIRouter(prefix="/v1/deals", tags=["playbooks"])


@router.get("/{deal_id}/playbook")
async def deal_playbook(
    deal_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Playbook:
    """The stage's playbook for this deal: fields still missing, checklist ticks, call script."""
    return await service.deal_playbook(runtime=runtime, principal=principal, deal_id=deal_id)


@router.put("/{deal_id}/checklist")
async def tick_checklist(
    deal_id: uuid.UUID,
    ticks: Ticks,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    """Which items of the current stage's checklist are done (If-Match)."""
    deal = await service.tick_checklist(
        runtime=runtime,
        principal=principal,
        deal_id=deal_id,
        ticks=ticks,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(deal.version)
    return deal
