"""SQL of an event's stages."""

from __future__ import annotations

import uuid
from datetime import date

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.tables import campaign_stages, participants


async def insert_stage(
    session: AsyncSession, campaign_id: uuid.UUID, name: str, due_date: date | None
) -> uuid.UUID:
    stage_id = uuid.uuid4()
    await session.execute(
        insert(campaign_stages).values(
            id=stage_id, campaign_id=campaign_id, position=0, name=name, due_date=due_date
        )
    )
    return stage_id


async def set_positions(session: AsyncSession, stage_ids: list[uuid.UUID]) -> None:
    for position, stage_id in enumerate(stage_ids):
        await session.execute(
            update(campaign_stages)
            .where(campaign_stages.c.id == stage_id)
            .values(position=position)
        )


async def change_stage(
    session: AsyncSession, stage_id: uuid.UUID, values: dict[str, object]
) -> None:
    await session.execute(
        update(campaign_stages).where(campaign_stages.c.id == stage_id).values(**values)
    )


async def stage_holds_participants(session: AsyncSession, stage_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(exists().where(participants.c.stage_id == stage_id))))
