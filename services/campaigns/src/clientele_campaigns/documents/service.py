"""Document operations: upload (checked, text extracted off the event loop, bytes stored before
the record, removed again when the record does not commit), list and search, download, delete;
each change an audit entry of the event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

from clientele_shared.auth.access import writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound, ProblemError
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.storage import (
    AttachmentRefused,
    AttachmentStorage,
    BlobMissing,
    StorageUnavailable,
    check_upload,
    refused,
    safe_filename,
)
from fastapi import UploadFile
from sqlalchemy import RowMapping

from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.documents import queries
from clientele_campaigns.documents.rules import Document, FoundDocument, extract_text
from clientele_campaigns.settings import CampaignsSettings

log = get_logger(__name__)
_NOT_FOUND = "No such document."


def _unavailable(exc: StorageUnavailable) -> ProblemError:
    return ProblemError(
        503,
        "Storage Unavailable",
        f"The document storage did not answer; try again. ({exc})",
        kind="storage-unavailable",
    )


def _document(row: RowMapping) -> Document:
    return Document.model_validate(dict(row))


async def upload_document(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    storage: AttachmentStorage,
    campaign_id: uuid.UUID,
    file: UploadFile,
    category: str,
    description: str | None,
) -> Document:
    """A file of the event: at most ``ATTACHMENT_MAX_BYTES`` (413), of an accepted type whose
    bytes match it (415), by a writer of the event (404 unseen, 403)."""
    settings = runtime.settings
    assert isinstance(settings, CampaignsSettings)
    async with runtime.sessions() as session:  # no bytes stored for whom may not write here
        campaign = await campaigns.visible_campaign(session, principal, campaign_id)
        writable_directions(principal, campaign.directions)
    try:
        upload = await check_upload(
            file,
            max_bytes=settings.attachment_max_bytes,
            allowed=settings.attachment_content_types,
        )
    except AttachmentRefused as exc:
        raise refused(exc) from None
    text = await asyncio.to_thread(extract_text, file.file, upload.content_type)
    document_id = uuid.uuid4()
    key = f"{campaign_id}/{document_id}"
    filename = safe_filename(file.filename)
    try:
        await storage.put(key, upload.chunks(), content_type=upload.content_type)
        async with campaigns.work(runtime, principal) as uow:
            await campaigns.locked_campaign(uow, principal, campaign_id)
            row = await queries.insert_document(
                uow.session,
                {
                    "id": document_id,
                    "campaign_id": campaign_id,
                    "category": category,
                    "filename": filename,
                    "description": description,
                    "content_type": upload.content_type,
                    "size": upload.size,
                    "sha256": upload.sha256,
                    "storage_key": key,
                    "extracted_text": text,
                    "created_by": principal.subject,
                },
            )
            await uow.audit(
                kind=campaigns.KIND,
                entity_id=campaign_id,
                action="document_added",
                version=None,
                changes={
                    "document": {
                        "old": None,
                        "new": {
                            "id": str(document_id),
                            "filename": filename,
                            "category": category,
                            "size": upload.size,
                            "sha256": upload.sha256,
                        },
                    }
                },
            )
    except StorageUnavailable as exc:
        raise _unavailable(exc) from None
    except BaseException:
        try:
            await storage.delete(key)
        except StorageUnavailable:
            log.warning("orphan document bytes left in the storage", key=key)
        raise
    return _document(row)


async def list_documents(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    category: str | None,
    text: str | None,
) -> list[Document]:
    """Every document of the event in one answer (or those matching ``text``)."""
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        rows = await queries.of_campaign(session, campaign_id, category, text)
    return [_document(row) for row in rows]


async def search_documents(
    *, runtime: ServiceRuntime, principal: Principal, text: str, category: str | None, limit: int
) -> list[FoundDocument]:
    async with runtime.sessions() as session:
        rows = await queries.search(session, principal, text, category, limit)
    return [FoundDocument.model_validate(dict(row)) for row in rows]


async def get_document(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, document_id: uuid.UUID
) -> Document:
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        row = await queries.one(session, campaign_id, document_id)
    if row is None:
        raise NotFound(_NOT_FOUND)
    return _document(row)


async def open_document(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    storage: AttachmentStorage,
    campaign_id: uuid.UUID,
    document_id: uuid.UUID,
) -> tuple[Document, AsyncIterator[bytes]]:
    """The document and its bytes as stored (a chunk at a time)."""
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        row = await queries.one(session, campaign_id, document_id)
    if row is None:
        raise NotFound(_NOT_FOUND)
    try:
        chunks = await storage.get(row["storage_key"])
    except StorageUnavailable as exc:
        raise _unavailable(exc) from None
    except BlobMissing:
        log.error("document bytes missing", document_id=str(document_id), key=row["storage_key"])
        raise ProblemError(
            500,
            "Document Content Missing",
            "The document is recorded but its bytes are missing from the storage.",
            kind="document-content-missing",
        ) from None
    return _document(row), chunks


async def delete_document(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    storage: AttachmentStorage,
    campaign_id: uuid.UUID,
    document_id: uuid.UUID,
) -> None:
    """Remove a document (a writer of the event); its bytes go once the removal committed."""
    async with campaigns.work(runtime, principal) as uow:
        await campaigns.locked_campaign(uow, principal, campaign_id)
        row = await queries.delete_document(uow.session, campaign_id, document_id)
        if row is None:
            raise NotFound(_NOT_FOUND)
        await uow.audit(
            kind=campaigns.KIND,
            entity_id=campaign_id,
            action="document_removed",
            version=None,
            changes={
                "document": {
                    "old": {"id": str(document_id), "filename": row["filename"]},
                    "new": None,
                }
            },
        )
    try:
        await storage.delete(row["storage_key"])
    except StorageUnavailable:
        log.warning("orphan document bytes left in the storage", key=row["storage_key"])
