"""SQL of pipelines and stages."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import LABEL_STYLE_TABLENAME_PLUS_COL, Select, and_, bindparam, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.pipelines.rules import Pipeline, Stage
from clientele_pipeline.tables import deals, pipelines, stages

_PIPELINE_COLUMNS = [(f"pipelines_{column.name}", column.name) for column in pipelines.c]
_STAGE_COLUMNS = [(f"stages_{column.name}", column.name) for column in stages.c]


def _load_statement(lock: str | None) -> Select[Any]:
    stmt: Select[Any] = (
        select(pipelines, stages)
        .set_label_style(LABEL_STYLE_TABLENAME_PLUS_COL)
        .select_from(
            pipelines.outerjoin(
                stages, and_(stages.c.pipeline_id == pipelines.c.id, ~stages.c.deleted)
            )
        )
        .where(pipelines.c.id == bindparam("pipeline_id"))
        .order_by(stages.c.position)
    )
    if lock == "update":
        return stmt.with_for_update(of=pipelines)
    if lock == "share":
        return stmt.with_for_update(read=True, of=pipelines)
    return stmt


_LOAD = {lock: _load_statement(lock) for lock in (None, "update", "share")}
"""Built once: a statement object keeps its cache key, so a read builds and hashes nothing."""


async def load(
    session: AsyncSession, pipeline_id: uuid.UUID, *, lock: str | None = None
) -> Pipeline | None:
    """A pipeline with its live stages in order, in one statement (a row per stage); ``lock``
    'update' or 'share' locks the pipeline's row."""
    rows = (await session.execute(_LOAD[lock], {"pipeline_id": pipeline_id})).mappings().all()
    if not rows:
        return None
    return Pipeline.model_validate(
        {
            **{name: rows[0][label] for label, name in _PIPELINE_COLUMNS},
            "stages": [
                Stage.model_validate({name: row[label] for label, name in _STAGE_COLUMNS})
                for row in rows
                if row["stages_id"] is not None
            ],
        }
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
