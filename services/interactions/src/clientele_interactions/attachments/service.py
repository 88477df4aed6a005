"""Attachment operations: upload (bytes stored first, then recorded), list, download, delete;
and the steps e-mail capture shares (store the bytes, record them, remove unrecorded ones)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound, ProblemError
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, unit_of_work
from clientele_shared.storage import AttachmentStorage, BlobMissing, Upload

from clientele_interactions.attachments import queries
from clientele_interactions.attachments.rules import NO_ATTACHMENT, Attachment
from clientele_interactions.log.queries import visible_interaction, writable_interaction
from clientele_interactions.tables import interaction_audit
from clientele_interactions.visibility import ensure_writable

log = get_logger(__name__)


async def store_blob(
    storage: AttachmentStorage, interaction_id: uuid.UUID, upload: Upload, written: list[str]
) -> tuple[uuid.UUID, str]:
    """Store a checked upload under a new key (appended to ``written`` first, so the caller
    can remove the blob when the transaction recording it does not commit): its id and key."""
    attachment_id = uuid.uuid4()
    key = f"{interaction_id}/{attachment_id}"
    written.append(key)
    await storage.put(key, upload.chunks(), content_type=upload.content_type)
    return attachment_id, key


async def record_attachment(
    uow: UnitOfWork,
    interaction_id: uuid.UUID,
    stored: tuple[uuid.UUID, str],
    *,
    filename: str,
    upload: Upload,
) -> Attachment:
    """Record a stored blob as an attachment of the interaction, with its audit entry."""
    attachment_id, key = stored
    row = await queries.insert_attachment(
        uow.session,
        id=attachment_id,
        interaction_id=interaction_id,
        filename=filename,
        content_type=upload.content_type,
        size=upload.size,
        sha256=upload.sha256,
        storage_key=key,
        created_by=uow.actor.subject,
    )
    attachment = Attachment.model_validate(row, from_attributes=True)
    await uow.audit(
        kind="interaction",
        entity_id=interaction_id,
        action="attachment_added",
        version=None,
        changes={"attachment": {"old": None, "new": attachment.model_dump(mode="json")}},
    )
    return attachment


async def discard(storage: AttachmentStorage, keys: list[str]) -> None:
    """Remove blobs whose database rows were not committed."""
    for key in keys:
        await storage.delete(key)


async def upload_attachment(
    *,
    runtime: ServiceRuntime,
    storage: AttachmentStorage,
    principal: Principal,
    interaction_id: uuid.UUID,
    filename: str,
    upload: Upload,
) -> Attachment:
    """Store a checked upload and record it on the interaction. The bytes are stored before the
    attachment is recorded (no lock is held while a large file travels to the storage), and
    only for whom may write here; a blob whose record fails is removed."""
    written: list[str] = []
    try:
        async with runtime.sessions() as session:
            _, card = await visible_interaction(session, principal, interaction_id)
            ensure_writable(principal, card)
        blob = await store_blob(storage, interaction_id, upload, written)
        async with unit_of_work(
            runtime.sessions, runtime.outbox, interaction_audit, principal
        ) as uow:
            await writable_interaction(uow.session, principal, interaction_id)
            return await record_attachment(
                uow, interaction_id, blob, filename=filename, upload=upload
            )
    except BaseException:
        await discard(storage, written)
        raise


async def list_attachments(
    *, runtime: ServiceRuntime, principal: Principal, interaction_id: uuid.UUID
) -> list[Attachment]:
    async with runtime.sessions() as session:
        await visible_interaction(session, principal, interaction_id)
        rows = await queries.attachments_of(session, interaction_id)
    return [Attachment.model_validate(row, from_attributes=True) for row in rows]


@dataclass(frozen=True)
class Download:
    attachment: Attachment
    chunks: AsyncIterator[bytes]


async def download_attachment(
    *,
    runtime: ServiceRuntime,
    storage: AttachmentStorage,
    principal: Principal,
    interaction_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> Download:
    """The attachment and its bytes as stored (404 as for the interaction, or unknown; 500 when
    the bytes are missing from the storage)."""
    async with runtime.sessions() as session:
        await visible_interaction(session, principal, interaction_id)
        row = await queries.attachment(session, interaction_id, attachment_id)
    if row is None:
        raise NotFound(NO_ATTACHMENT)
    try:
        chunks = await storage.get(row.storage_key)
    except BlobMissing:
        log.error("attachment bytes missing", attachment_id=str(row.id), key=row.storage_key)
        raise ProblemError(
            500,
            "Attachment Content Missing",
            "The attachment is recorded but its bytes are missing from the storage.",
            kind="attachment-content-missing",
        ) from None
    return Download(Attachment.model_validate(row, from_attributes=True), chunks)


async def delete_attachment(
    *,
    runtime: ServiceRuntime,
    storage: AttachmentStorage,
    principal: Principal,
    interaction_id: uuid.UUID,
    attachment_id: uuid.UUID,
) -> None:
    """Delete the attachment's record (with an audit entry), then its bytes."""
    async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, principal) as uow:
        await writable_interaction(uow.session, principal, interaction_id)
        row = await queries.delete_attachment(uow.session, interaction_id, attachment_id)
        if row is None:
            raise NotFound(NO_ATTACHMENT)
        await uow.audit(
            kind="interaction",
            entity_id=interaction_id,
            action="attachment_removed",
            version=None,
            changes={
                "attachment": {"old": {"id": str(row.id), "filename": row.filename}, "new": None}
            },
        )
    await storage.delete(row.storage_key)
