"""HTTP of stages: each change needs the pipeline's If-Match and answers the whole pipeline."""

from __future__ import annotations

import uuid

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Response, status

from clientele_pipeline.pipelines.rules import Pipeline
from clientele_pipeline.stages import service
from clientele_pipeline.stages.rules import NewStage, StageOrder, StagePatch

router = APIRouter(prefix="/v1/pipelines", tags=["stages"])


def _tagged(response: Response, pipeline: Pipeline) -> Pipeline:
    response.headers["ETag"] = etag(pipeline.version)
    return pipeline


@router.post("/{pipeline_id}/stages", status_code=status.HTTP_201_CREATED)
async def add_stage(
    pipeline_id: uuid.UUID,
    draft: NewStage,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    """Add a stage (If-Match of the pipeline); answers the whole pipeline."""
    pipeline = await service.add_stage(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        draft=draft,
        expected=required_versions(if_match),
    )
    return _tagged(response, pipeline)


@router.put("/{pipeline_id}/stages/order")
async def reorder_stages(
    pipeline_id: uuid.UUID,
    order: StageOrder,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    """Put the stages in the given order (every stage named once)."""
    pipeline = await service.reorder_stages(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        order=order,
        expected=required_versions(if_match),
    )
    return _tagged(response, pipeline)


@router.patch("/{pipeline_id}/stages/{stage_id}")
async def update_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    patch: StagePatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    """Rename, archive (``archived``), re-tune or set the playbook of a stage."""
    pipeline = await service.update_stage(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, pipeline)


@router.delete("/{pipeline_id}/stages/{stage_id}")
async def delete_stage(
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    """Delete an empty stage (409 while it holds deals: archive it instead)."""
    pipeline = await service.delete_stage(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        stage_id=stage_id,
        expected=required_versions(if_match),
    )
    return _tagged(response, pipeline)
