"""Stage operations: each one a new version of the stage's pipeline (one aggregate)."""

from __future__ import annotations

import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime

from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.pipelines.rules import (
    MAX_STAGES,
    Pipeline,
    Stage,
    StageRejected,
    check_stage_names,
)
from clientele_pipeline.stages import queries
from clientele_pipeline.stages.rules import (
    NewStage,
    StageOrder,
    StagePatch,
    check_reorder,
    stage_changes,
)


def _rejected(exc: StageRejected) -> Exception:
    return invalid_field(exc.field, exc.message)


def _stage_of(pipeline: Pipeline, stage_id: uuid.UUID) -> Stage:
    stage = pipeline.stage(stage_id)
    if stage is None:
        raise NotFound("The stage does not exist.")
    return stage


def _keeps_a_start(stages: list[Stage]) -> None:
    if not any(s.kind in ("open", "monitoring") and not s.archived for s in stages):
        raise invalid_field(
            "stages", "a pipeline needs a live stage where deals start (open or monitoring)"
        )


async def add_stage(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    draft: NewStage,
    expected: set[int],
) -> Pipeline:
    """Insert a stage at ``position`` (default: last)."""
    async with pipelines.work(runtime, principal) as uow:
        current = await pipelines.locked_pipeline(uow, principal, pipeline_id)
        check_version(expected, current.version)
        if len(current.stages) >= MAX_STAGES:
            raise invalid_field("stages", f"a pipeline has at most {MAX_STAGES} stages")
        try:
            check_stage_names([*(s.name for s in current.stages), draft.name])
        except StageRejected as exc:
            raise _rejected(exc) from None
        position = len(current.stages) if draft.position is None else draft.position
        stage = Stage(**draft.model_dump(exclude={"position"}), id=uuid.uuid4(), position=position)
        await queries.insert_stage(uow.session, pipeline_id, stage)
        order = [s.id for s in current.stages]
        order.insert(min(position, len(order)), stage.id)
        await queries.set_positions(uow.session, pipeline_id, order)
        return await pipelines.new_version(
            uow,
            current,
            expected,
            action="stage_added",
            changes={f"stages.{stage.id}": {"old": None, "new": stage.model_dump(mode="json")}},
        )


async def update_stage(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    patch: StagePatch,
    expected: set[int],
) -> Pipeline:
    """Rename, archive or re-tune a stage; its kind cannot change while it holds deals."""
    async with pipelines.work(runtime, principal) as uow:
        current = await pipelines.locked_pipeline(uow, principal, pipeline_id)
        stage = _stage_of(current, stage_id)
        check_version(expected, current.version)
        changes = stage_changes(stage, patch)
        if not changes:
            return current
        changed = stage.model_copy(update={k: v["new"] for k, v in changes.items()})
        others = [s for s in current.stages if s.id != stage_id]
        try:
            check_stage_names([*(s.name for s in others), changed.name])
        except StageRejected as exc:
            raise _rejected(exc) from None
        _keeps_a_start([*others, changed])
        if "kind" in changes and await queries.stage_holds_deals(uow.session, stage_id):
            raise Conflict(
                "The stage holds deals; its kind cannot change.", kind="stage-holds-deals"
            )
        await queries.update_stage(uow.session, stage_id, {k: v["new"] for k, v in changes.items()})
        if "kind" in changes:
            await queries.rebuild_funnel(uow.session, pipeline_id)
        return await pipelines.new_version(
            uow,
            current,
            expected,
            action="stage_updated",
            changes={f"stages.{stage_id}.{k}": v for k, v in changes.items()},
        )


async def reorder_stages(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    order: StageOrder,
    expected: set[int],
) -> Pipeline:
    async with pipelines.work(runtime, principal) as uow:
        current = await pipelines.locked_pipeline(uow, principal, pipeline_id)
        check_version(expected, current.version)
        try:
            check_reorder(current.stages, order.stage_ids)
        except StageRejected as exc:
            raise _rejected(exc) from None
        old = [str(s.id) for s in current.stages]
        new = [str(stage_id) for stage_id in order.stage_ids]
        if old == new:
            return current
        await queries.set_positions(uow.session, pipeline_id, order.stage_ids)
        return await pipelines.new_version(
            uow,
            current,
            expected,
            action="stages_reordered",
            changes={"stage_order": {"old": old, "new": new}},
        )


async def delete_stage(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    stage_id: uuid.UUID,
    expected: set[int],
) -> Pipeline:
    """Remove an empty stage (409 while it holds deals: archive it instead); the row stays for
    the stage history."""
    async with pipelines.work(runtime, principal) as uow:
        current = await pipelines.locked_pipeline(uow, principal, pipeline_id)
        stage = _stage_of(current, stage_id)
        check_version(expected, current.version)
        if await queries.stage_holds_deals(uow.session, stage_id):
            raise Conflict(
                "The stage holds deals; move them out or archive the stage.",
                kind="stage-holds-deals",
            )
        others = [s for s in current.stages if s.id != stage_id]
        if len(others) < 2:
            raise invalid_field("stages", "a pipeline keeps at least two stages")
        _keeps_a_start(others)
        await queries.update_stage(uow.session, stage_id, {"deleted": True})
        await queries.set_positions(uow.session, pipeline_id, [s.id for s in others])
        return await pipelines.new_version(
            uow,
            current,
            expected,
            action="stage_deleted",
            changes={f"stages.{stage_id}": {"old": stage.model_dump(mode="json"), "new": None}},
        )
