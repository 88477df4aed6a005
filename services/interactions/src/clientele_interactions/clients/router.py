"""HTTP of clients as interactions knows them: the card and the summary."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Request, Response

from clientele_interactions.clients import service
from clientele_interactions.clients.cache import SummaryCache
from clientele_interactions.clients.rules import ClientCard, Summary
from clientele_interactions.dependencies import ClockDep, Settings

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.get("/{organization_id}")
async def get_client_card(
    organization_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> ClientCard:
    """The client's card as interactions knows it (``blocked``: in the unwanted counterparty
    register); 404 outside the caller's directions or when deleted. A merged organization
    answers its survivor's card (``Content-Location`` names it)."""
    card = await service.client_card(
        runtime=runtime, principal=principal, organization_id=organization_id
    )
    if card.organization_id != organization_id:
        response.headers["Content-Location"] = f"/v1/clients/{card.organization_id}"
    return card


def summary_cache(request: Request) -> SummaryCache:
    cache: SummaryCache = request.app.state.summary_cache
    return cache


@router.get("/{organization_id}/summary")
async def get_client_summary(
    organization_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    settings: Settings,
    clock: ClockDep,
    request: Request,
    response: Response,
    last: Annotated[int | None, Query(ge=1, le=100, description="last N interactions")] = None,
    upcoming: Annotated[
        int | None, Query(alias="next", ge=1, le=100, description="next N planned contacts")
    ] = None,
) -> Summary:
    """The client summary (сводка): the card, the people and their positions, the last
    interactions, the next planned contacts (with the overdue count), open deals, campaign
    participation and ERP invoices and payments, as far as the caller's directions allow.
    404 for a deleted client; a merged one answers its survivor's summary (``Content-Location``
    names it).

    Served from Redis while nothing it shows has changed (``X-Cache: hit``)."""
    summary, hit = await service.client_summary(
        runtime=runtime,
        principal=principal,
        cache=summary_cache(request),
        organization_id=organization_id,
        last=last or settings.summary_last,
        upcoming=upcoming or settings.summary_next,
        now=clock.now(),
    )
    response.headers["X-Cache"] = "hit" if hit else "miss"
    if summary.card.organization_id != organization_id:
        response.headers["Content-Location"] = f"/v1/clients/{summary.card.organization_id}/summary"
    return summary
