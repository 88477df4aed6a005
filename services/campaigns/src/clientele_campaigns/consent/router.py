"""HTTP of consent: record a person's consent for a channel, read it with its trail."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, status

from clientele_campaigns.consent import service
from clientele_campaigns.consent.rules import ConsentEntry, ConsentRequest, Consents

router = APIRouter(prefix="/v1/consents", tags=["consent"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def record_consent(
    request: ConsentRequest, principal: Writer, runtime: CurrentRuntime
) -> ConsentEntry:
    """A consent given or withdrawn (a form, an import, a call); kept and published (a role
    that writes: a security officer reads a person's consent, records none)."""
    return await service.record(runtime=runtime, principal=principal, request=request)


@router.get("/{person_id}")
async def person_consents(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Consents:
    """The person's consent per channel now and the ledger, newest first."""
    return await service.of_person(
        runtime=runtime, principal=principal, person_id=person_id, limit=limit
    )
