"""HTTP of deals: parse, call the service, answer with the ETag."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Response, status

from clientele_pipeline.deals import service
from clientele_pipeline.deals.rules import (
    Deal,
    DealDraft,
    DealPatch,
    Move,
    StageHistoryEntry,
)

router = APIRouter(prefix="/v1/deals", tags=["deals"])
Limit = Annotated[int, Query(ge=1, le=500)]


def _tagged(response: Response, deal: Deal) -> Deal:
    response.headers["ETag"] = etag(deal.version)
    return deal


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_deal(
    draft: DealDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Deal:
    """A deal with a known client (422), never a blocked one (409 counterparty-blocked)."""
    deal = await service.create_deal(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"/v1/deals/{deal.id}"
    return _tagged(response, deal)


@router.get("")
async def list_deals(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    pipeline_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    deleted: Annotated[bool, Query(description="list the deleted ones instead")] = False,
    limit: Limit = 100,
) -> list[Deal]:
    """Deals of the caller's directions, newest first."""
    return await service.list_deals(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        organization_id=organization_id,
        deleted=deleted,
        limit=limit,
    )


@router.get("/{deal_id}")
async def get_deal(
    deal_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    include_deleted: Annotated[bool, Query(description="also answer for a deleted one")] = False,
) -> Deal:
    deal = await service.get_deal(
        runtime=runtime, principal=principal, deal_id=deal_id, include_deleted=include_deleted
    )
    return _tagged(response, deal)


@router.patch("/{deal_id}")
async def update_deal(
    deal_id: uuid.UUID,
    patch: DealPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    """JSON merge patch of the deal's fields (If-Match: 428 without, 412 stale)."""
    deal = await service.update_deal(
        runtime=runtime,
        principal=principal,
        deal_id=deal_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, deal)


@router.post("/{deal_id}/move")
async def move_deal(
    deal_id: uuid.UUID,
    move: Move,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    """Move to another stage (If-Match); 422 naming the playbook fields still missing."""
    deal = await service.move_deal(
        runtime=runtime,
        principal=principal,
        deal_id=deal_id,
        move=move,
        expected=required_versions(if_match),
    )
    return _tagged(response, deal)


@router.delete("/{deal_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_deal(
    deal_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete (restorable)."""
    version = await service.delete_deal(
        runtime=runtime, principal=principal, deal_id=deal_id, expected=required_versions(if_match)
    )
    response.headers["ETag"] = etag(version)


@router.post("/{deal_id}/restore")
async def restore_deal(
    deal_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Deal:
    deal = await service.restore_deal(
        runtime=runtime, principal=principal, deal_id=deal_id, expected=required_versions(if_match)
    )
    return _tagged(response, deal)


@router.get("/{deal_id}/audit")
async def deal_audit(
    deal_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0, description="entries after this entry id")] = 0,
    limit: Limit = 100,
) -> list[AuditEntry]:
    """Every change of the deal: who, when, what, old and new."""
    return await service.deal_audit(
        runtime=runtime, principal=principal, deal_id=deal_id, after=after, limit=limit
    )


@router.get("/{deal_id}/history")
async def deal_history(
    deal_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[StageHistoryEntry]:
    """Every stage the deal entered: when, who, why."""
    return await service.deal_history(runtime=runtime, principal=principal, deal_id=deal_id)
