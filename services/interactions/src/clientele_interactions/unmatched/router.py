"""HTTP of the unmatched addresses of captured mail."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import etag
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Response

from clientele_interactions.dependencies import Writer
from clientele_interactions.unmatched import service
from clientele_interactions.unmatched.rules import (
    LinkOutcome,
    LinkRequest,
    UnmatchedAddress,
    UnmatchedStatus,
)

router = APIRouter(prefix="/v1/unmatched-addresses", tags=["e-mail capture"])


@router.get("")
async def list_unmatched(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    status: UnmatchedStatus = "open",
    organization_id: uuid.UUID | None = None,
    interaction_id: uuid.UUID | None = None,
    address: Annotated[str | None, Query(max_length=320)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> list[UnmatchedAddress]:
    """The unmatched addresses of captured mail the caller may see (open ones by default),
    oldest first: those of interactions at visible clients, and those of mailbox mail that
    found no client when the caller sees one of its candidates (or every direction)."""
    return await service.list_unmatched(
        runtime=runtime,
        principal=principal,
        status=status,
        organization_id=organization_id,
        interaction_id=interaction_id,
        address=address,
        limit=limit,
        offset=offset,
    )


@router.get("/{item_id}")
async def get_unmatched(
    item_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> UnmatchedAddress:
    return await service.get_unmatched(runtime=runtime, principal=principal, item_id=item_id)


@router.post("/{item_id}/link")
async def link_unmatched(
    item_id: uuid.UUID,
    request: LinkRequest,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
) -> LinkOutcome:
    """The address belongs to this person (one the directory knows; a merged person's
    survivor): the person joins the captured interaction's participants (a new version, an
    audit entry, ``interaction.updated``) and the address is resolved. 409 when it was resolved
    already or its mail was not captured (no interaction to link: capture the message with the
    client given); 422 for a person unknown here or deleted."""
    outcome = await service.link_unmatched(
        runtime=runtime, principal=principal, item_id=item_id, person_id=request.person_id
    )
    response.headers["ETag"] = etag(outcome.interaction.version)
    return outcome


@router.post("/{item_id}/dismiss")
async def dismiss_unmatched(
    item_id: uuid.UUID, principal: Writer, runtime: CurrentRuntime
) -> UnmatchedAddress:
    """Nobody to link (a mailing list, a one-off sender): the address is resolved without a
    person. Needs the right to write about the interaction's client (403), or, for mail that
    found no client, to see every direction or one of its candidates; 409 when resolved
    already."""
    return await service.dismiss_unmatched(runtime=runtime, principal=principal, item_id=item_id)
