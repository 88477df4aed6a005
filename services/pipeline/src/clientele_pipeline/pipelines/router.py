"""HTTP of pipelines and stages: parse, call the service, answer with the ETag."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Response, status

from clientele_pipeline.pipelines import service
from clientele_pipeline.pipelines.rules import (
    Pipeline,
    PipelineDraft,
    PipelinePatch,
)

router = APIRouter(prefix="/v1/pipelines", tags=["pipelines"])


def _tagged(response: Response, pipeline: Pipeline) -> Pipeline:
    response.headers["ETag"] = etag(pipeline.version)
    return pipeline


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_pipeline(
    draft: PipelineDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Pipeline:
    """A pipeline with its stages, in directions the caller works in (403 outside them)."""
    pipeline = await service.create_pipeline(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"/v1/pipelines/{pipeline.id}"
    return _tagged(response, pipeline)


@router.get("")
async def list_pipelines(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    deleted: Annotated[bool, Query(description="list the deleted ones instead")] = False,
) -> list[Pipeline]:
    """Pipelines of the caller's directions, by name."""
    return await service.list_pipelines(
        runtime=runtime, principal=principal, deleted=deleted, limit=limit
    )


@router.get("/{pipeline_id}")
async def get_pipeline(
    pipeline_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    include_deleted: Annotated[bool, Query(description="also answer for a deleted one")] = False,
) -> Pipeline:
    """One pipeline; 404 when missing, deleted or outside the caller's directions."""
    pipeline = await service.get_pipeline(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        include_deleted=include_deleted,
    )
    return _tagged(response, pipeline)


@router.patch("/{pipeline_id}")
async def update_pipeline(
    pipeline_id: uuid.UUID,
    patch: PipelinePatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    """Change name, directions or lost reasons (If-Match: 428 without, 412 stale)."""
    pipeline = await service.update_pipeline(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, pipeline)


@router.delete("/{pipeline_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_pipeline(
    pipeline_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete (restorable); 409 while it holds live deals."""
    version = await service.delete_pipeline(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(version)


@router.post("/{pipeline_id}/restore")
async def restore_pipeline(
    pipeline_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Pipeline:
    pipeline = await service.restore_pipeline(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        expected=required_versions(if_match),
    )
    return _tagged(response, pipeline)


@router.get("/{pipeline_id}/audit")
async def pipeline_audit(
    pipeline_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0, description="entries after this entry id")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Every change of the pipeline and its stages: who, when, what, old and new."""
    return await service.pipeline_audit(
        runtime=runtime, principal=principal, pipeline_id=pipeline_id, after=after, limit=limit
    )
