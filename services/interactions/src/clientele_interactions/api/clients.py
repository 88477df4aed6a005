"""Clients as interactions knows them: the card (from the directory's events) and the summary."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.access import ensure_visible
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.problems import NotFound
from fastapi import APIRouter, Query, Request, Response

from clientele_interactions.api.common import ClockDep, Runtime, Settings
from clientele_interactions.domain.cards import ClientCard
from clientele_interactions.domain.summary import Summary, present
from clientele_interactions.operations import NO_CLIENT, visible_card
from clientele_interactions.summary import (
    SummaryCache,
    build_body,
    card_and_generation,
    overdue_count,
)

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.get("/{organization_id}")
async def get_client_card(
    organization_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime, response: Response
) -> ClientCard:
    """The client's card as interactions knows it (``blocked``: in the unwanted counterparty
    register); 404 outside the caller's directions or when deleted. A merged organization
    answers its survivor's card (``Content-Location`` names it)."""
    async with runtime.sessions() as session:
        card = await visible_card(session, principal, organization_id)
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
    runtime: Runtime,
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
    now = clock.now()
    last = last or settings.summary_last
    upcoming = upcoming or settings.summary_next
    cache = summary_cache(request)
    async with runtime.sessions() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        found = await card_and_generation(session, organization_id)
        if found is None:
            raise NotFound(NO_CLIENT)
        card, generation = found
        ensure_visible(principal, card.directions, NO_CLIENT)
        key = cache.key(card.organization_id, generation, last, upcoming)
        body = await cache.get(key)
        response.headers["X-Cache"] = "hit" if body else "miss"
        if body is None:
            body = await build_body(
                session, card.organization_id, last=last, upcoming=upcoming, now=now
            )
            await cache.put(key, body)
        overdue = await overdue_count(session, card.organization_id, now)
    if card.organization_id != organization_id:
        response.headers["Content-Location"] = f"/v1/clients/{card.organization_id}/summary"
    return present(card, body, principal, now=now, overdue_count=overdue)
