"""Pipeline HTTP API (pipelines; deals and automation arrive with their own issue)."""

import uuid
from typing import Annotated

from clientele_shared.auth.access import apply_direction_filter, writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import APIRouter, Depends, status
from sqlalchemy import insert, select

from clientele_pipeline.domain import Pipeline, PipelineDraft
from clientele_pipeline.store import pipelines

router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_pipeline(
    draft: PipelineDraft, principal: CurrentPrincipal, runtime: Runtime
) -> Pipeline:
    writable_directions(principal, draft.directions)
    pipeline = Pipeline(**draft.model_dump(), id=uuid.uuid4())
    async with runtime.sessions() as session, session.begin():
        await session.execute(insert(pipelines).values(**pipeline.model_dump()))
    return pipeline


@router.get("")
async def list_pipelines(principal: CurrentPrincipal, runtime: Runtime) -> list[Pipeline]:
    """Pipelines of the caller's directions."""
    stmt = apply_direction_filter(
        select(pipelines).order_by(pipelines.c.name), principal, pipelines.c.directions
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [Pipeline.model_validate(row, from_attributes=True) for row in rows]
