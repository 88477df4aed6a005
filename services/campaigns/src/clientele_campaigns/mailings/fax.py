"""HTTP of the fax gateway (no token: each URL's own signature, ADR 47): it fetches a
recipient's fax PDF and reports the fax's result."""

from __future__ import annotations

from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import StreamingResponse

from clientele_campaigns.documents.router import storage_of
from clientele_campaigns.mailings import service
from clientele_campaigns.mailings.rules import FaxResult

router = APIRouter(prefix="/v1/public/fax", tags=["mailings"])


@router.get("/{token}", response_class=Response)
async def fax_document(token: str, runtime: CurrentRuntime, request: Request) -> Response:
    """The recipient's fax as a PDF (the document URL handed to the gateway)."""
    chunks = await service.open_fax(runtime=runtime, storage=storage_of(request), token=token)
    return StreamingResponse(
        chunks, media_type="application/pdf", headers={"X-Content-Type-Options": "nosniff"}
    )


@router.post("/{token}/result", status_code=status.HTTP_204_NO_CONTENT)
async def fax_result(token: str, result: FaxResult, runtime: CurrentRuntime) -> None:
    """The gateway's result on the fax (the result URL handed to it; once recorded, a
    repeated or later report changes nothing)."""
    await service.fax_result(runtime=runtime, token=token, result=result)
