"""Pipeline operations: each one a unit of work (transaction, audit entry, version)."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    field_changes,
    soft_delete_values,
    unit_of_work,
    write_version,
)
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.pipelines import queries
from clientele_pipeline.pipelines.rules import (
    Pipeline,
    PipelineDraft,
    PipelinePatch,
    Stage,
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


def work(runtime: ServiceRuntime, principal: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
    """A unit of work of the pipeline service on behalf of ``principal``."""
    return unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal)


async def create_pipeline(
    *, runtime: ServiceRuntime, principal: Principal, draft: PipelineDraft
) -> Pipeline:
    """A pipeline in directions the caller works in (403 outside them)."""
    writable_directions(principal, draft.directions)
    pipeline_id = uuid.uuid4()
    async with work(runtime, principal) as uow:
        await queries.insert_pipeline(
            uow.session,
            {
                "id": pipeline_id,
                "name": draft.name,
                "directions": draft.directions,
                "lost_reasons": draft.lost_reasons,
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await queries.insert_stages(
            uow.session,
            pipeline_id,
            [
                Stage(**stage.model_dump(), id=uuid.uuid4(), position=position)
                for position, stage in enumerate(draft.stages)
            ],
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


async def locked_pipeline(
    uow: UnitOfWork, principal: Principal, pipeline_id: uuid.UUID, *, deleted: bool | None = False
) -> Pipeline:
    """The pipeline locked for a change the caller may make (404 unseen, 403 not all its
    directions)."""
    pipeline = await visible_pipeline(
        uow.session, principal, pipeline_id, lock="update", deleted=deleted
    )
    writable_directions(principal, pipeline.directions)
    return pipeline


async def new_version(
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
    async with work(runtime, principal) as uow:
        current = await locked_pipeline(uow, principal, pipeline_id)
        old = current.model_dump(include={"name", "directions", "lost_reasons"})
        new = {**old, **patch.model_dump(exclude_unset=True)}
        changes = field_changes(old, new)
        if not changes:
            check_version(expected, current.version)
            return current
        writable_directions(principal, new["directions"])
        return await new_version(
            uow, current, expected, action="updated", changes=changes, values=new
        )


async def delete_pipeline(
    *, runtime: ServiceRuntime, principal: Principal, pipeline_id: uuid.UUID, expected: set[int]
) -> int:
    """Soft-delete a pipeline without live deals (409 while it holds some); the new version."""
    async with work(runtime, principal) as uow:
        current = await locked_pipeline(uow, principal, pipeline_id)
        check_version(expected, current.version)
        if await queries.pipeline_holds_deals(uow.session, pipeline_id):
            raise Conflict(
                "The pipeline holds deals; move or delete them first.",
                kind="pipeline-holds-deals",
            )
        return (
            await new_version(
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
    async with work(runtime, principal) as uow:
        current = await locked_pipeline(uow, principal, pipeline_id, deleted=None)
        if current.deleted_at is None:
            raise Conflict("The pipeline is not deleted.")
        return await new_version(
            uow,
            current,
            expected,
            action="restored",
            changes={},
            values=soft_delete_values(principal.subject, delete=False),
        )
