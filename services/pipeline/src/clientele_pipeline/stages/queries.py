"""SQL of stages."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.pipelines.rules import Stage
from clientele_pipeline.tables import deals, stages


async def insert_stage(session: AsyncSession, pipeline_id: uuid.UUID, stage: Stage) -> None:
    await session.execute(stages.insert().values(pipeline_id=pipeline_id, **stage.model_dump()))


async def update_stage(session: AsyncSession, stage_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(update(stages).where(stages.c.id == stage_id).values(**values))


async def set_positions(
    session: AsyncSession, pipeline_id: uuid.UUID, order: list[uuid.UUID]
) -> None:
    """The stages' new order; the analytics' funnel is recomputed when a position changed."""
    moved = 0
    for position, stage_id in enumerate(order):
        result = await session.execute(
            update(stages)
            .where(stages.c.id == stage_id, stages.c.position != position)
            .values(position=position)
        )
        moved += result.rowcount  # type: ignore[attr-defined]
    if moved:
        await rebuild_funnel(session, pipeline_id)


async def rebuild_funnel(session: AsyncSession, pipeline_id: uuid.UUID) -> None:
    """The funnel totals of a pipeline recomputed from its stage history (ADR 44): the furthest
    stage a deal reached depends on the stages' positions and kinds."""
    await session.execute(select(func.analytics_funnel_rebuild(pipeline_id)))


async def stage_holds_deals(session: AsyncSession, stage_id: uuid.UUID) -> bool:
    """Whether any deal (a deleted one too: it may be restored) is in the stage."""
    return bool(await session.scalar(select(exists().where(deals.c.stage_id == stage_id))))
