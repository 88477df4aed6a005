"""HTTP of an event's documents: upload (multipart), list and search, download, delete."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.storage import AttachmentStorage
from clientele_shared.values import Note
from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from clientele_campaigns.documents import service
from clientele_campaigns.documents.rules import Document, DocumentCategory, FoundDocument

router = APIRouter(tags=["documents"])
PATH = "/v1/campaigns/{campaign_id}/documents"
SearchText = Annotated[str, Query(min_length=1, max_length=200, description="words to find")]


def storage_of(request: Request) -> AttachmentStorage:
    storage: AttachmentStorage = request.app.state.storage
    return storage


@router.post(PATH, status_code=status.HTTP_201_CREATED)
async def upload_document(
    campaign_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="the file")],
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    request: Request,
    response: Response,
    category: Annotated[DocumentCategory, Form()] = "other",
    description: Annotated[Note | None, Form()] = None,
) -> Document:
    """Add a file to the event (programme, presentation, contract, photo...)."""
    document = await service.upload_document(
        runtime=runtime,
        principal=principal,
        storage=storage_of(request),
        campaign_id=campaign_id,
        file=file,
        category=category,
        description=description,
    )
    response.headers["Location"] = f"/v1/campaigns/{campaign_id}/documents/{document.id}"
    return document


@router.get(PATH)
async def list_documents(
    campaign_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    category: DocumentCategory | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> list[Document]:
    """All documents of the event in one answer, newest first; with ``q`` those whose name,
    description or text match, best first."""
    return await service.list_documents(
        runtime=runtime, principal=principal, campaign_id=campaign_id, category=category, text=q
    )


@router.get("/v1/documents")
async def search_documents(
    q: SearchText,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    category: DocumentCategory | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[FoundDocument]:
    """Documents of the events the caller sees whose name, description or text match."""
    return await service.search_documents(
        runtime=runtime, principal=principal, text=q, category=category, limit=limit
    )


@router.get(PATH + "/{document_id}")
async def get_document(
    campaign_id: uuid.UUID,
    document_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
) -> Document:
    return await service.get_document(
        runtime=runtime, principal=principal, campaign_id=campaign_id, document_id=document_id
    )


@router.get(PATH + "/{document_id}/content", response_class=Response)
async def download_document(
    campaign_id: uuid.UUID,
    document_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    request: Request,
) -> Response:
    """The file as uploaded (``Content-Disposition: attachment``)."""
    document, chunks = await service.open_document(
        runtime=runtime,
        principal=principal,
        storage=storage_of(request),
        campaign_id=campaign_id,
        document_id=document_id,
    )
    return StreamingResponse(
        chunks,
        media_type=document.content_type,
        headers={
            "Content-Length": str(document.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(document.filename)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{document.sha256}"',
        },
    )


@router.delete(PATH + "/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(
    campaign_id: uuid.UUID,
    document_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    request: Request,
) -> None:
    await service.delete_document(
        runtime=runtime,
        principal=principal,
        storage=storage_of(request),
        campaign_id=campaign_id,
        document_id=document_id,
    )
