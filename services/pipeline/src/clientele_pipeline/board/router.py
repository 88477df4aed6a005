"""HTTP of the board."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Depends, Query

from clientele_pipeline.board import service
from clientele_pipeline.board.rules import Board, BoardFilter

router = APIRouter(prefix="/v1/pipelines", tags=["board"])


@router.get("/{pipeline_id}/board")
async def board(
    pipeline_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    wanted: Annotated[BoardFilter, Depends()],
    limit: Annotated[int, Query(ge=1, le=200, description="deals per column")] = 20,
    stage_id: Annotated[uuid.UUID | None, Query(description="one column only")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="a column's next_cursor")
    ] = None,
) -> Board:
    """The pipeline's deals by stage: counts and sums per currency of every deal that passes
    the filters, and the newest ``limit`` of each column (``stage_id`` + ``cursor`` for more)."""
    return await service.board(
        runtime=runtime,
        principal=principal,
        pipeline_id=pipeline_id,
        wanted=wanted,
        limit=limit,
        stage_id=stage_id,
        cursor=cursor,
    )
