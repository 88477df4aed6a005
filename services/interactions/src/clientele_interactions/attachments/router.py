"""HTTP of attachments: upload (size and content type checked, then streamed to the storage),
list, download (streamed), delete."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import quote

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.storage import AttachmentRefused, check_upload, refused, safe_filename
from fastapi import APIRouter, File, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from clientele_interactions.attachments import service
from clientele_interactions.attachments.rules import Attachment
from clientele_interactions.dependencies import Settings, Storage, Writer

router = APIRouter(prefix="/v1/interactions/{interaction_id}/attachments", tags=["attachments"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_attachment(
    interaction_id: uuid.UUID,
    file: Annotated[UploadFile, File(description="the file to attach")],
    principal: Writer,
    runtime: CurrentRuntime,
    settings: Settings,
    storage: Storage,
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
    attachment = await service.upload_attachment(
        runtime=runtime,
        storage=storage,
        principal=principal,
        interaction_id=interaction_id,
        filename=safe_filename(file.filename),
        upload=upload,
    )
    response.headers["Location"] = f"/v1/interactions/{interaction_id}/attachments/{attachment.id}"
    return attachment


@router.get("")
async def list_attachments(
    interaction_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> list[Attachment]:
    return await service.list_attachments(
        runtime=runtime, principal=principal, interaction_id=interaction_id
    )


@router.get("/{attachment_id}", response_class=Response)
async def download_attachment(
    interaction_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    storage: Storage,
) -> Response:
    """The file as uploaded (``Content-Disposition: attachment``)."""
    download = await service.download_attachment(
        runtime=runtime,
        storage=storage,
        principal=principal,
        interaction_id=interaction_id,
        attachment_id=attachment_id,
    )
    attachment = download.attachment
    return StreamingResponse(
        download.chunks,
        media_type=attachment.content_type,
        headers={
            "Content-Length": str(attachment.size),
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(attachment.filename)}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{attachment.sha256}"',
        },
    )


@router.delete("/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_attachment(
    interaction_id: uuid.UUID,
    attachment_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    storage: Storage,
) -> None:
    await service.delete_attachment(
        runtime=runtime,
        storage=storage,
        principal=principal,
        interaction_id=interaction_id,
        attachment_id=attachment_id,
    )
