"""Attachment operations: store the bytes, record them on the interaction, remove them."""

from __future__ import annotations

import uuid

from clientele_shared.events.envelope import Actor
from clientele_shared.storage import AttachmentStorage, Upload
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.log.queries import audit
from clientele_interactions.log.schemas import Attachment
from clientele_interactions.tables import attachments


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
    session: AsyncSession,
    interaction_id: uuid.UUID,
    stored: tuple[uuid.UUID, str],
    *,
    filename: str,
    upload: Upload,
    actor: Actor,
) -> Attachment:
    """Record a stored blob as an attachment of the interaction, with its audit entry."""
    attachment_id, key = stored
    row = (
        await session.execute(
            insert(attachments)
            .values(
                id=attachment_id,
                interaction_id=interaction_id,
                filename=filename,
                content_type=upload.content_type,
                size=upload.size,
                sha256=upload.sha256,
                storage_key=key,
                created_by=actor.subject,
            )
            .returning(attachments)
        )
    ).one()
    attachment = Attachment.model_validate(row, from_attributes=True)
    await audit(
        session,
        actor,
        interaction_id=interaction_id,
        action="attachment_added",
        version=None,
        changes={"attachment": {"old": None, "new": attachment.model_dump(mode="json")}},
    )
    return attachment


async def discard(storage: AttachmentStorage, keys: list[str]) -> None:
    """Remove blobs whose database rows were not committed."""
    for key in keys:
        await storage.delete(key)
