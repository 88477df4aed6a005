"""Pipeline operations: each one a unit of work (transaction, audit entry, version)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    soft_delete_values,
    unit_of_work,
    write_version,
)
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.pipelines import queries
from clientele_pipeline.pipelines.rules import (
    MAX_STAGES,
    NewStage,
    Pipeline,
    PipelineDraft,
    PipelinePatch,
    Stage,
    StageOrder,
    StagePatch,
    StageRejected,
    check_reorder,
    check_stage_names,
    field_changes,
    stage_changes,
)
from clientele_pipeline.tables import audit_log, pipelines

KIND = "pipeline"
PIPELINE = Versioned(pipelines, KIND)
_NOT_FOUND = "The pipeline does not exist."


async def visible_pipeline(
    session: AsyncSession,
    principal: Principal,
    pipeline_id: uuid.UUID,
    *,
    lock: str | None = None,
    deleted: bool | None = False,
) -> Pipeline:
    """The pipeline if the caller may see it (404 otherwise); ``deleted`` None: either state."""
    pipeline = await queries.load(session, pipeline_id, lock=lock)
    if pipeline is None or (deleted is not None and (pipeline.deleted_at is not None) != deleted):
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, pipeline.directions, _NOT_FOUND)
    return pipeline


def _work(runtime: ServiceRuntime, principal: Principal) -> Any:
    return unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal)


async def create_pipeline(
    *, runtime: ServiceRuntime, principal: Principal, draft: PipelineDraft
) -> Pipeline:
    """A pipeline in directions the caller works in (403 outside them)."""
    writable_directions(principal, draft.directions)
    pipeline_id = uuid.uuid4()
    async with _work(runtime, principal) as uow:
        await uow.session.execute(
            insert(pipelines).values(
                id=pipeline_id,
                name=draft.name,
                directions=draft.directions,
                lost_reasons=draft.lost_reasons,
                version=1,
                created_by=principal.subject,
                updated_by=principal.subject,
            )
        )
        for position, stage in enumerate(draft.stages):
            await queries.insert_stage(
                uow.session,
                pipeline_id,
                Stage(**stage.model_dump(), id=uuid.uuid4(), position=position),
            )
        pipeline = await queries.load(uow.session, pipeline_id)
        assert pipeline is not None
        created = pipeline.model_dump(mode="json", include={"name", "directions", "lost_reasons"})
        created["stages"] = [stage.model_dump(mode="json") for stage in pipeline.stages]
        await uow.audit(
            kind=KIND,
            entity_id=pipeline_id,
            action="created",
            version=1,
            changes={key: {"old": None, "new": value} for key, value in created.items()},
        )
    return pipeline


async def list_pipelines(
    *, runtime: ServiceRuntime, principal: Principal, deleted: bool, limit: int
) -> list[Pipeline]:
    async with runtime.sessions() as session:
        return await queries.list_visible(session, principal, deleted=deleted, limit=limit)


async def get_pipeline(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    include_deleted: bool = False,
) -> Pipeline:
    async with runtime.sessions() as session:
        return await visible_pipeline(
            session, principal, pipeline_id, deleted=None if include_deleted else False
        )


async def pipeline_audit(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    after: int,
    limit: int,
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await visible_pipeline(session, principal, pipeline_id, deleted=None)
        return await audit_trail(session, audit_log, KIND, pipeline_id, after=after, limit=limit)


async def _locked(
    uow: UnitOfWork, principal: Principal, pipeline_id: uuid.UUID, *, deleted: bool | None = False
) -> Pipeline:
    """The pipeline locked for a change the caller may make (404 unseen, 403 not all its
    directions)."""
    pipeline = await visible_pipeline(
        uow.session, principal, pipeline_id, lock="update", deleted=deleted
    )
    writable_directions(principal, pipeline.directions)
    return pipeline


async def _new_version(
    uow: UnitOfWork,
    pipeline: Pipeline,
    expected: set[int],
    *,
    action: str,
    changes: dict[str, Any],
    values: dict[str, Any] | None = None,
) -> Pipeline:
    await write_version(
        uow,
        PIPELINE,
        pipeline.id,
        current=pipeline.version,
        expected=expected,
        values=values or {},
        action=action,
        changes=changes,
    )
    changed = await queries.load(uow.session, pipeline.id)
    assert changed is not None
    return changed


async def update_pipeline(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID,
    patch: PipelinePatch,
    expected: set[int],
) -> Pipeline:
    """Rename, move between directions or change the lost reasons (no change: no version)."""
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id)
        old = current.model_dump(include={"name", "directions", "lost_reasons"})
        new = {**old, **patch.model_dump(exclude_unset=True)}
        changes = field_changes(old, new)
        if not changes:
            check_version(expected, current.version)
            return current
        writable_directions(principal, new["directions"])
        return await _new_version(
            uow, current, expected, action="updated", changes=changes, values=new
        )


async def delete_pipeline(
    *, runtime: ServiceRuntime, principal: Principal, pipeline_id: uuid.UUID, expected: set[int]
) -> int:
    """Soft-delete a pipeline without live deals (409 while it holds some); the new version."""
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id)
        check_version(expected, current.version)
        if await queries.pipeline_holds_deals(uow.session, pipeline_id):
            raise Conflict(
                "The pipeline holds deals; move or delete them first.",
                kind="pipeline-holds-deals",
            )
        return (
            await _new_version(
                uow,
                current,
                expected,
                action="deleted",
                changes={},
                values=soft_delete_values(principal.subject),
            )
        ).version


async def restore_pipeline(
    *, runtime: ServiceRuntime, principal: Principal, pipeline_id: uuid.UUID, expected: set[int]
) -> Pipeline:
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id, deleted=None)
        if current.deleted_at is None:
            raise Conflict("The pipeline is not deleted.")
        return await _new_version(
            uow,
            current,
            expected,
            action="restored",
            changes={},
            values=soft_delete_values(principal.subject, delete=False),
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
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id)
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
        await queries.set_positions(uow.session, order)
        return await _new_version(
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
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id)
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
        return await _new_version(
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
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id)
        check_version(expected, current.version)
        try:
            check_reorder(current.stages, order.stage_ids)
        except StageRejected as exc:
            raise _rejected(exc) from None
        old = [str(s.id) for s in current.stages]
        new = [str(stage_id) for stage_id in order.stage_ids]
        if old == new:
            return current
        await queries.set_positions(uow.session, order.stage_ids)
        return await _new_version(
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
    async with _work(runtime, principal) as uow:
        current = await _locked(uow, principal, pipeline_id)
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
        await queries.set_positions(uow.session, [s.id for s in others])
        return await _new_version(
            uow,
            current,
            expected,
            action="stage_deleted",
            changes={f"stages.{stage_id}": {"old": stage.model_dump(mode="json"), "new": None}},
        )
