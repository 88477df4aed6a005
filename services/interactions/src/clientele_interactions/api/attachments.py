"""Attachments of an interaction: upload (size and content type checked, then streamed to the
storage), list, download (streamed), delete."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.problems import NotFound, ProblemError
from clientele_shared.observability import get_logger
from clientele_shared.service_layer import actor_of
from clientele_shared.storage import (
    AttachmentRefused,
    AttachmentStorage,
    BlobMissing,
    check_upload,
    refused,
    safe_filename,
)
from fastapi import APIRouter, File, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse
from sqlalchemy import delete, select

from clientele_interactions.api.common import Runtime, Settings, Writer
from clientele_interactions.attachments.service import discard, record_attachment, store_blob
from clientele_interactions.log.queries import (
    audit,
    visible_interaction,
    writable_interaction,
)
from clientele_interactions.log.schemas import Attachment
from clientele_interactions.tables import attachments
from clientele_interactions.visibility import ensure_writable

router = APIRouter(prefix="/v1/interactions/{interaction_id}/attachments", tags=["attachments"])
_NOT_FOUND = "No such attachment."
log = get_logger(__name__)


def storage_of(request: Request) -> AttachmentStorage:
    storage: AttachmentStorage = request.app.state.storage
    return storage


async def read_upload(upload: UploadFile, limit: int) -> bytes:
    """The uploaded bytes, 413 past ``limit`` (read no further than that)."""
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ProblemError(
            413,
            "Content Too Large",
            f"The file may have at most {limit} bytes.",
            kind="content-too-large",
        )
    return data


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_attachment(
    interaction_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="the file to attach")],
    principal: Writer,
    runtime: Runtime,
    settings: Settings,
    request: Request,
    response: Response,
) -> Attachment:
    """Attach a file: at most ``ATTACHMENT_MAX_BYTES`` (413), of an accepted content type whose
    bytes match it (415). The bytes are stored before the attachment is recorded (no lock is
    held while a large file travels to the storage); a blob whose record fails is removed."""
    try:
        upload = await check_upload(
            file,
            max_bytes=settings.attachment_max_bytes,
            allowed=settings.attachment_content_types,
        )
    except AttachmentRefused as exc:
        raise refused(exc) from None
    storage = storage_of(request)
    written: list[str] = []
    try:
        async with runtime.sessions() as session:  # no blob for whom may not write here
            ensure_writable(
                principal, (await visible_interaction(session, principal, interaction_id))[1]
            )
        blob = await store_blob(storage, interaction_id, upload, written)
        async with runtime.sessions() as session, session.begin():
            await writable_interaction(session, principal, interaction_id)
            attachment = await record_attachment(
                session,
                interaction_id,
                blob,
                filename=safe_filename(file.filename),
                upload=upload,
                actor=actor_of(principal),
            )
    except BaseException:
        await discard(storage, written)
        raise
    response.headers["Location"] = f"/v1/interactions/{interaction_id}/attachments/{attachment.id}"
    return attachment


@router.get("")
async def list_attachments(
    interaction_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime
) -> list[Attachment]:
    async with runtime.sessions() as session:
        await visible_interaction(session, principal, interaction_id)
        rows = (
            await session.execute(
                select(attachments)
                .where(attachments.c.interaction_id == interaction_id)
                .order_by(attachments.c.created_at, attachments.c.id)
            )
        ).all()
    return [Attachment.model_validate(row, from_attributes=True) for row in rows]


@router.get("/{attachment_id}", response_class=Response)
async def download_attachment(
    interaction_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: Runtime,
    request: Request,
) -> Response:
    """The file as uploaded (``Content-Disposition: attachment``)."""
    async with runtime.sessions() as session:
        await visible_interaction(session, principal, interaction_id)
        row = (
            await session.execute(
                select(attachments).where(
                    attachments.c.id == attachment_id,
                    attachments.c.interaction_id == interaction_id,
                )
            )
        ).first()
    if row is None:
        raise NotFound(_NOT_FOUND)
    try:
        chunks = await storage_of(request).get(row.storage_key)
    except BlobMissing:
        log.error("attachment bytes missing", attachment_id=str(row.id), key=row.storage_key)
        raise ProblemError(
            500,
            "Attachment Content Missing",
            "The attachment is recorded but its bytes are missing from the storage.",
            kind="attachment-content-missing",
        ) from None
    return StreamingResponse(
        chunks,
        media_type=row.content_type,
        headers={
            "Content-Length": str(row.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row.filename)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{row.sha256}"',
        },
    )


@router.delete("/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_attachment(
    interaction_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: Writer,
    runtime: Runtime,
    request: Request,
) -> None:
    async with runtime.sessions() as session, session.begin():
        await writable_interaction(session, principal, interaction_id)
        row = (
            await session.execute(
                delete(attachments)
                .where(
                    attachments.c.id == attachment_id,
                    attachments.c.interaction_id == interaction_id,
                )
                .returning(attachments)
            )
        ).first()
        if row is None:
            raise NotFound(_NOT_FOUND)
        await audit(
            session,
            actor_of(principal),
            interaction_id=interaction_id,
            action="attachment_removed",
            version=None,
            changes={
                "attachment": {"old": {"id": str(row.id), "filename": row.filename}, "new": None}
            },
        )
    await storage_of(request).delete(row.storage_key)
