"""SQL of the webhooks feature."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.tables import webhook_endpoints


async def endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> Row[Any] | None:
    query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
    return (await session.execute(query)).first()


async def endpoint_named(session: AsyncSession, name: str) -> Row[Any] | None:
    query = select(webhook_endpoints).where(webhook_endpoints.c.name == name)
    return (await session.execute(query)).first()


async def endpoints(session: AsyncSession) -> list[Row[Any]]:
    query = select(webhook_endpoints).order_by(webhook_endpoints.c.name)
    return list((await session.execute(query)).all())


async def insert_endpoint(session: AsyncSession, endpoint_id: uuid.UUID, **values: Any) -> None:
    await session.execute(insert(webhook_endpoints).values(id=endpoint_id, **values))


async def update_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    found = await session.scalar(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(**values, updated_at=func.now())
        .returning(webhook_endpoints.c.id)
    )
    return found is not None


async def delete_endpoint(session: AsyncSession, endpoint_id: uuid.UUID) -> bool:
    found = await session.scalar(
        webhook_endpoints.delete()
        .where(webhook_endpoints.c.id == endpoint_id)
        .returning(webhook_endpoints.c.id)
    )
    return found is not None
