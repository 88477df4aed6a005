"""The board read: one pipeline's columns, each with its totals and a page of deals."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import cast

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import read_snapshot

from clientele_pipeline.board import queries
from clientele_pipeline.board.rules import (
    Board,
    BoardFilter,
    Column,
    Total,
    decode_cursor,
    encode_cursor,
)
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.settings import PipelineSettings


def _settings(runtime: ServiceRuntime) -> PipelineSettings:
    return cast(PipelineSettings, runtime.settings)


async def board(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    wanted: BoardFilter,
    limit: int,
    stage_id: uuid.UUID | None = None,
    cursor: str | None = None,
) -> Board:
    """Every live stage's column (only ``stage_id``'s when given, continued after ``cursor``)."""
    if cursor is not None and stage_id is None:
        raise invalid_field(
            "cursor", "a cursor continues one column: give its stage_id", location="query"
        )
    after = decode_cursor(cursor) if cursor is not None else None
    async with runtime.sessions() as session, session.begin():
        await read_snapshot(session)  # the counts and the pages agree
        pipeline = await pipelines.visible_pipeline(session, principal, pipeline_id)
        stages = pipeline.stages
        if stage_id is not None:
            stages = [stage for stage in stages if stage.id == stage_id]
            if not stages:
                raise NotFound("The stage does not exist.")
        where = queries.conditions(principal, pipeline_id, wanted)
        per_stage: dict[uuid.UUID, list[Total]] = defaultdict(list)
        if wanted.only_directions():
            figures = await queries.stored_totals(
                session, principal, pipeline_id, direction=wanted.direction, stage_id=stage_id
            )
        else:
            figures = await queries.totals(session, where, stage_id)
        for row in figures:
            per_stage[row["stage_id"]].append(
                Total(currency=row["currency"], amount=row["amount"], count=row["count"])
            )
        counts = {stage: sum(total.count for total in found) for stage, found in per_stage.items()}
        if after is None:
            # a column without matches is not read; few matches overall are found through the
            # filter's index rather than by walking each column in board order (ADR 20)
            shown = [stage.id for stage in stages if counts.get(stage.id, 0) > 0]
            fetch = (
                queries.sparse_pages
                if sum(counts.values()) <= _settings(runtime).board_sparse_matches
                else queries.first_pages
            )
            pages = await fetch(session, where, shown, limit + 1) if shown else {}
        else:
            pages = {
                stages[0].id: await queries.column_page(
                    session, where, stages[0].id, after=after, limit=limit + 1
                )
            }
        columns = []
        for stage in stages:
            cards = pages.get(stage.id, [])
            more = len(cards) > limit
            cards = cards[:limit]
            totals = sorted(per_stage.get(stage.id, []), key=lambda t: t.currency or "")
            columns.append(
                Column(
                    stage=stage,
                    count=sum(total.count for total in totals),
                    totals=totals,
                    deals=cards,
                    next_cursor=encode_cursor(cards[-1]) if more else None,
                )
            )
    return Board(pipeline_id=pipeline.id, version=pipeline.version, columns=columns)
