"""SQL of pipelines and stages."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import Select, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.pipelines.rules import Pipeline, Stage
from clientele_pipeline.tables import deals, pipelines, stages


async def load(
    session: AsyncSession, pipeline_id: uuid.UUID, *, lock: str | None = None
) -> Pipeline | None:
    """A pipeline with its live stages in order; ``lock`` 'update' or 'share' locks its row."""
    stmt: Select[Any] = select(pipelines).where(pipelines.c.id == pipeline_id)
    if lock == "update":
        stmt = stmt.with_for_update()
    elif lock == "share":
        stmt = stmt.with_for_update(read=True)
    row = (await session.execute(stmt)).mappings().first()
    if row is None:
        return None
    rows = (
        await session.execute(
            select(stages)
            .where(stages.c.pipeline_id == pipeline_id, ~stages.c.deleted)
            .order_by(stages.c.position)
        )
    ).mappings()
    return Pipeline.model_validate(
        {**row, "stages": [Stage.model_validate(dict(stage)) for stage in rows]}
    )


async def list_visible(
    session: AsyncSession, principal: Principal, *, deleted: bool, limit: int
) -> list[Pipeline]:
    ids = (
        await session.scalars(
            select(pipelines.c.id)
            .where(
                visible_to(principal, pipelines.c.directions),
                pipelines.c.deleted_at.is_not(None)
                if deleted
                else pipelines.c.deleted_at.is_(None),
            )
            .order_by(pipelines.c.name, pipelines.c.id)
            .limit(limit)
        )
    ).all()
    found = [await load(session, pipeline_id) for pipeline_id in ids]
    return [pipeline for pipeline in found if pipeline is not None]


async def insert_pipeline(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(pipelines.insert().values(**values))


async def insert_stages(session: AsyncSession, pipeline_id: uuid.UUID, new: list[Stage]) -> None:
    """A new pipeline's stages."""
    await session.execute(
        stages.insert(), [{"pipeline_id": pipeline_id, **stage.model_dump()} for stage in new]
    )


async def pipeline_holds_deals(session: AsyncSession, pipeline_id: uuid.UUID) -> bool:
    """Whether any live deal is in the pipeline."""
    return bool(
        await session.scalar(
            select(exists().where(deals.c.pipeline_id == pipeline_id, deals.c.deleted_at.is_(None)))
        )
    )
