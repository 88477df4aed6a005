"""SQL of an event's documents."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import RowMapping, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.tables import campaigns, documents

_FIELDS = [
    documents.c.id,
    documents.c.campaign_id,
    documents.c.category,
    documents.c.filename,
    documents.c.description,
    documents.c.content_type,
    documents.c.size,
    documents.c.sha256,
    documents.c.extracted_text.is_not(None).label("text_indexed"),
    documents.c.created_at,
    documents.c.created_by,
]


async def insert_document(session: AsyncSession, values: dict[str, Any]) -> RowMapping:
    await session.execute(insert(documents).values(**values))
    row = await one(session, values["campaign_id"], values["id"])
    assert row is not None
    return row


async def one(
    session: AsyncSession, campaign_id: uuid.UUID, document_id: uuid.UUID
) -> RowMapping | None:
    stmt = select(*_FIELDS, documents.c.storage_key).where(
        documents.c.id == document_id, documents.c.campaign_id == campaign_id
    )
    return (await session.execute(stmt)).mappings().first()


async def of_campaign(
    session: AsyncSession, campaign_id: uuid.UUID, category: str | None, text: str | None
) -> list[RowMapping]:
    """Every document of the event (newest first), or those matching ``text`` (best first)."""
    stmt = select(*_FIELDS).where(documents.c.campaign_id == campaign_id)
    if category is not None:
        stmt = stmt.where(documents.c.category == category)
    if text is None:
        stmt = stmt.order_by(documents.c.created_at.desc(), documents.c.id)
    else:
        query = func.websearch_to_tsquery("russian", text)
        stmt = stmt.where(documents.c.search.bool_op("@@")(query)).order_by(
            func.ts_rank(documents.c.search, query).desc(), documents.c.created_at.desc()
        )
    return list((await session.execute(stmt)).mappings())


async def search(
    session: AsyncSession, principal: Principal, text: str, category: str | None, limit: int
) -> list[RowMapping]:
    """Documents of live events the caller sees whose name, description or text match."""
    query = func.websearch_to_tsquery("russian", text)
    stmt = (
        select(*_FIELDS, campaigns.c.title.label("campaign_title"))
        .join(campaigns, campaigns.c.id == documents.c.campaign_id)
        .where(
            documents.c.search.bool_op("@@")(query),
            visible_to(principal, campaigns.c.directions),
            campaigns.c.deleted_at.is_(None),
        )
        .order_by(func.ts_rank(documents.c.search, query).desc(), documents.c.created_at.desc())
        .limit(limit)
    )
    if category is not None:
        stmt = stmt.where(documents.c.category == category)
    return list((await session.execute(stmt)).mappings())


async def delete_document(
    session: AsyncSession, campaign_id: uuid.UUID, document_id: uuid.UUID
) -> RowMapping | None:
    stmt = (
        delete(documents)
        .where(documents.c.id == document_id, documents.c.campaign_id == campaign_id)
        .returning(documents.c.filename, documents.c.storage_key)
    )
    return (await session.execute(stmt)).mappings().first()
