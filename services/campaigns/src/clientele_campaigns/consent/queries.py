"""SQL of the consent ledger."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from clientele_shared.directory_read_models import any_of
from sqlalchemy import insert, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.consent.rules import ConsentEntry
from clientele_campaigns.tables import consents


async def record(session: AsyncSession, values: dict[str, Any]) -> ConsentEntry:
    row = (await session.execute(insert(consents).values(**values).returning(consents))).one()
    return ConsentEntry.model_validate(row._mapping)


async def history(session: AsyncSession, person_id: uuid.UUID, limit: int) -> list[ConsentEntry]:
    rows = await session.execute(
        select(consents)
        .where(consents.c.person_id == person_id)
        .order_by(consents.c.id.desc())
        .limit(limit)
    )
    return [ConsentEntry.model_validate(row._mapping) for row in rows]


async def granted(
    session: AsyncSession, person_ids: Iterable[uuid.UUID], channel: str
) -> dict[uuid.UUID, ConsentEntry]:
    """The newest entry per person for a channel (absent: never recorded)."""
    rows = await session.execute(
        select(consents)
        .where(any_of(consents.c.person_id, person_ids), consents.c.channel == channel)
        .ext(distinct_on(consents.c.person_id))
        .order_by(consents.c.person_id, consents.c.id.desc())
    )
    return {row.person_id: ConsentEntry.model_validate(row._mapping) for row in rows}
