"""Clients as interactions knows them: the card (from the directory's events)."""

from __future__ import annotations

import uuid

from clientele_shared.auth.dependencies import CurrentPrincipal
from fastapi import APIRouter

from clientele_interactions.api.common import Runtime
from clientele_interactions.domain import ClientCard
from clientele_interactions.operations import visible_card

router = APIRouter(prefix="/v1/clients", tags=["clients"])


@router.get("/{organization_id}")
async def get_client_card(
    organization_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime
) -> ClientCard:
    """The client's card as interactions knows it; 404 outside the caller's directions."""
    async with runtime.sessions() as session:
        return await visible_card(session, principal, organization_id)
