"""SQL of complaints: a delivery locked with its request, and its complaint on the log."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.tables import deliveries, delivery_attempts, requests

COMPLAINED = "complained"


async def locked_delivery(session: AsyncSession, delivery_id: uuid.UUID) -> Row[Any] | None:
    stmt: Any = (
        select(
            deliveries.c.id,
            deliveries.c.request_id,
            deliveries.c.channel,
            deliveries.c.state,
            deliveries.c.recipient,
            deliveries.c.attempts,
            requests.c.requester,
            requests.c.idempotency_key,
            requests.c.kind,
        )
        .join(requests, requests.c.id == deliveries.c.request_id)
        .where(deliveries.c.id == delivery_id)
        .with_for_update(of=deliveries)
    )
    found: Row[Any] | None = (await session.execute(stmt)).first()
    return found


async def complained(session: AsyncSession, delivery_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(delivery_attempts.c.id).where(
            delivery_attempts.c.delivery_id == delivery_id,
            delivery_attempts.c.outcome == COMPLAINED,
        )
    )
    return found is not None


async def record(session: AsyncSession, delivery_id: uuid.UUID, attempt: int) -> None:
    await session.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery_id,
            attempt=attempt,
            outcome=COMPLAINED,
            detail="the recipient reported it as spam (feedback-loop report)",
        )
    )
