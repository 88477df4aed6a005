"""SQL of attachments."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.tables import attachments


async def insert_attachment(session: AsyncSession, **values: Any) -> Row[Any]:
    result: Any = await session.execute(insert(attachments).values(**values).returning(attachments))
    row: Row[Any] = result.one()
    return row


async def attachments_of(session: AsyncSession, interaction_id: uuid.UUID) -> list[Row[Any]]:
    result: Any = await session.execute(
        select(attachments)
        .where(attachments.c.interaction_id == interaction_id)
        .order_by(attachments.c.created_at, attachments.c.id)
    )
    return list(result.all())


async def attachment(
    session: AsyncSession, interaction_id: uuid.UUID, attachment_id: uuid.UUID
) -> Row[Any] | None:
    result: Any = await session.execute(
        select(attachments).where(
            attachments.c.id == attachment_id, attachments.c.interaction_id == interaction_id
        )
    )
    row: Row[Any] | None = result.first()
    return row


async def delete_attachment(
    session: AsyncSession, interaction_id: uuid.UUID, attachment_id: uuid.UUID
) -> Row[Any] | None:
    """Delete the attachment's row; the deleted row (None when there was none)."""
    result: Any = await session.execute(
        delete(attachments)
        .where(attachments.c.id == attachment_id, attachments.c.interaction_id == interaction_id)
        .returning(attachments)
    )
    row: Row[Any] | None = result.first()
    return row
