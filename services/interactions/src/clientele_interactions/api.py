"""Interactions HTTP API (client cards; the contact log arrives with its own issue)."""

import uuid
from typing import Annotated

from clientele_shared.auth.access import ensure_visible
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.problems import NotFound
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import APIRouter, Depends
from sqlalchemy import select

from clientele_interactions.domain import ClientCard
from clientele_interactions.store import client_cards

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.get("/{organization_id}")
async def get_client_card(
    organization_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: Annotated[ServiceRuntime, Depends(runtime_of)],
) -> ClientCard:
    """The client's card as interactions knows it; 404 outside the caller's directions."""
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(client_cards).where(client_cards.c.organization_id == organization_id)
            )
        ).first()
    if row is None:
        raise NotFound("No such client.")
    card = ClientCard.model_validate(row, from_attributes=True)
    ensure_visible(principal, card.directions)
    return card
