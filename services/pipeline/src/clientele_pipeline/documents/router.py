"""HTTP of the ERP's documents: shown on their deal and on their client."""

from __future__ import annotations

import uuid

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter

from clientele_pipeline.documents import service
from clientele_pipeline.documents.rules import Document

router = APIRouter(tags=["deals"])


@router.get("/v1/deals/{deal_id}/documents")
async def deal_documents(
    deal_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[Document]:
    """Invoices, payments and shipments the ERP reported for the deal, by date."""
    return await service.deal_documents(runtime=runtime, principal=principal, deal_id=deal_id)


@router.get("/v1/organizations/{organization_id}/documents", tags=["documents"])
async def organization_documents(
    organization_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[Document]:
    """Invoices, payments and shipments the ERP reported for the client (those attached to no
    deal too, and those of clients merged into it) in the caller's directions, by date."""
    return await service.organization_documents(
        runtime=runtime, principal=principal, organization_id=organization_id
    )
