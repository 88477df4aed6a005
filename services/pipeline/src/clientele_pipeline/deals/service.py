"""Deal operations: each one a unit of work (transaction, audit entry, version, events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.directory_read_models import OrganizationRecord, PersonRecord
from clientele_shared.events.envelope import Actor
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    UnitOfWork,
    Versioned,
    audit_trail,
    defer_version,
    restore,
    soft_delete_values,
    write_version,
    write_version_row,
)
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline import publishing
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import queries
from clientele_pipeline.deals.rules import (
    Deal,
    DealDraft,
    DealFields,
    DealPatch,
    Move,
    StageHistoryEntry,
    changes_between,
    missing_fields,
    patched_fields,
    status_of,
)
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.pipelines.rules import Pipeline, Stage
from clientele_pipeline.tables import audit_log, deal_stage_history, deals

KIND = "deal"
DEAL = Versioned(deals, KIND)
_NOT_FOUND = "The deal does not exist."


async def visible_deal(
    session: AsyncSession,
    principal: Principal,
    deal_id: uuid.UUID,
    *,
    lock: bool = False,
    deleted: bool | None = False,
) -> Deal:
    """The deal if the caller may see it (404 otherwise: also while its client is deleted)."""
    return checked_deal(principal, await queries.load(session, deal_id, lock=lock), deleted)


def checked_deal(
    principal: Principal, found: tuple[Deal, bool] | None, deleted: bool | None = False
) -> Deal:
    """``visible_deal``'s checks on a deal as ``queries.load`` returned it."""
    if found is None:
        raise NotFound(_NOT_FOUND)
    deal, hidden = found
    if hidden or (deleted is not None and (deal.deleted_at is not None) != deleted):
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, deal.directions, _NOT_FOUND)
    return deal


def _directions(principal: Principal, pipeline: Pipeline, requested: list[str] | None) -> list[str]:
    """The deal's directions: those asked for or the pipeline's the caller works in; always
    within the pipeline's (422) and the caller's (403)."""
    if requested is None:
        mine = (
            pipeline.directions
            if principal.is_service or principal.sees_all_directions
            else [d for d in pipeline.directions if d in principal.directions]
        )
        requested = mine or pipeline.directions
    outside = sorted(set(requested) - set(pipeline.directions))
    if outside:
        raise invalid_field("directions", f"not directions of the pipeline: {', '.join(outside)}")
    writable_directions(principal, requested)
    return sorted(set(requested))


def _check_client(
    principal: Principal, organization_id: uuid.UUID, client: OrganizationRecord | None
) -> None:
    """The deal's client: known, live and visible to the caller (422), not blocked (409)."""
    if client is None or client.deleted or not principal.can_see(client.directions):
        raise invalid_field("organization_id", "no such organization", "unknown_reference")
    if client.blocked:
        raise Conflict(
            "The organization is in the unwanted counterparty register: no new deals.",
            kind="counterparty-blocked",
            organization_id=str(organization_id),
        )


async def _check_references(
    session: AsyncSession,
    principal: Principal,
    fields: DealFields,
    directions: list[str],
    changed: set[str] | None,
    *,
    organization_id: uuid.UUID | None = None,
) -> None:
    """The client (on creation), the contact persons (known and live) and the responsible
    employee (active in a deal's direction) that ``changed`` touches (None: all), read from the
    read models in one statement."""
    persons = fields.person_ids if changed is None or "person_ids" in changed else []
    employee_id = fields.responsible_employee_id
    if changed is not None and not {"responsible_employee_id", "directions"} & changed:
        employee_id = None
    if organization_id is None and not persons and employee_id is None:
        return
    found = await clients.references(
        session,
        organizations=[organization_id] if organization_id is not None else [],
        persons=persons,
        employees=[employee_id] if employee_id is not None else [],
    )
    if organization_id is not None:
        _check_client(principal, organization_id, found.organizations.get(organization_id))
    unknown = [
        str(pid) for pid in persons if pid not in found.persons or found.persons[pid].deleted
    ]
    if unknown:
        raise invalid_field(
            "person_ids", f"no such persons: {', '.join(unknown)}", "unknown_reference"
        )
    if employee_id is not None:
        employee = found.employees.get(employee_id)
        if employee is None or not employee.active:
            raise invalid_field(
                "responsible_employee_id", "no such active employee", "unknown_reference"
            )
        if set(employee.directions).isdisjoint(directions):
            raise invalid_field(
                "responsible_employee_id",
                "the employee does not work in the deal's directions",
                "direction_mismatch",
            )


def _open_stage(pipeline: Pipeline, stage_id: uuid.UUID | None) -> Stage:
    if stage_id is None:
        return pipeline.first_stage()
    stage = pipeline.stage(stage_id)
    if stage is None or stage.archived:
        raise invalid_field("stage_id", "no such live stage in the pipeline", "unknown_reference")
    if stage.kind not in ("open", "monitoring"):
        raise invalid_field("stage_id", "a deal starts in an open or monitoring stage")
    return stage


async def _pipeline(
    session: AsyncSession, principal: Principal, pipeline_id: uuid.UUID
) -> Pipeline:
    """The deal's pipeline, share-locked: its stages do not change until the deal is written."""
    try:
        return await pipelines.visible_pipeline(session, principal, pipeline_id, lock="share")
    except NotFound:
        raise invalid_field("pipeline_id", "no such pipeline", "unknown_reference") from None


async def create_deal(*, runtime: ServiceRuntime, principal: Principal, draft: DealDraft) -> Deal:
    """A deal in its pipeline's first open stage (or ``stage_id``), with its first stage
    history row, audit entry and ``deal.created`` event."""
    async with pipelines.work(runtime, principal) as uow:
        return await create_in(uow, principal, draft, uuid.uuid4())


async def create_in(
    uow: UnitOfWork, principal: Principal, draft: DealDraft, deal_id: uuid.UUID
) -> Deal:
    """``create_deal`` in the caller's unit of work (an automation's firing: ``deal_id``
    derived from it, so a second run cannot add another)."""
    session = uow.session
    pipeline = await _pipeline(session, principal, draft.pipeline_id)
    stage = _open_stage(pipeline, draft.stage_id)
    directions = _directions(principal, pipeline, draft.directions)
    fields = draft.model_copy(update={"directions": directions})
    await _check_references(
        session, principal, fields, directions, None, organization_id=draft.organization_id
    )
    deal = await queries.insert_deal(
        session,
        {
            **queries.storage_values(fields),
            "id": deal_id,
            "pipeline_id": pipeline.id,
            "stage_id": stage.id,
            "status": "open",
            "organization_id": draft.organization_id,
            "version": 1,
            "created_by": principal.subject,
            "updated_by": principal.subject,
        },
    )
    entered = _history_values(uow.actor, None, 1, deal.stage_entered_at)
    await _record_move(uow, deal, None, stage.id, entered)
    created = changes_between(DealFields(title=deal.title), deal.fields())
    created["title"] = {"old": None, "new": deal.title}
    for name in ("pipeline_id", "stage_id", "organization_id"):
        created[name] = {"old": None, "new": str(getattr(deal, name))}
    await uow.audit(kind=KIND, entity_id=deal_id, action="created", version=1, changes=created)
    uow.stage(publishing.deal_created(uow.outbox, deal, stage, uow.actor))
    return deal


async def _record_move(
    uow: UnitOfWork,
    deal: Deal,
    from_stage_id: uuid.UUID | None,
    to_stage_id: uuid.UUID,
    values: dict[str, Any],
) -> None:
    """The move's stage history entry, written with the audit entry and the events."""
    entry = queries.history_entry(
        deal=deal, from_stage_id=from_stage_id, to_stage_id=to_stage_id, values=values
    )
    await uow.append(deal_stage_history, [entry])


def _history_values(
    actor: Actor, reason: str | None, version: int, moved_at: datetime
) -> dict[str, Any]:
    return {
        "actor_subject": actor.subject,
        "actor_kind": actor.kind,
        "reason": reason,
        "deal_version": version,
        "moved_at": moved_at,
    }


async def get_deal(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID, include_deleted: bool
) -> Deal:
    async with runtime.sessions() as session:
        return await visible_deal(
            session, principal, deal_id, deleted=None if include_deleted else False
        )


async def list_deals(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    pipeline_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
    deleted: bool,
    limit: int,
) -> list[Deal]:
    async with runtime.sessions() as session:
        return await queries.list_visible(
            session,
            principal,
            pipeline_id=pipeline_id,
            organization_id=organization_id,
            deleted=deleted,
            limit=limit,
        )


async def deal_audit(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await visible_deal(session, principal, deal_id, deleted=None)
        return await audit_trail(session, audit_log, KIND, deal_id, after=after, limit=limit)


async def deal_history(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID
) -> list[StageHistoryEntry]:
    async with runtime.sessions() as session:
        await visible_deal(session, principal, deal_id, deleted=None)
        return await queries.history(session, deal_id)


async def locked_deal(
    uow: UnitOfWork, principal: Principal, deal_id: uuid.UUID, *, deleted: bool | None = False
) -> Deal:
    deal = await visible_deal(uow.session, principal, deal_id, lock=True, deleted=deleted)
    writable_directions(principal, deal.directions)
    return deal


def writable_deal(principal: Principal, found: tuple[Deal, bool] | None) -> Deal:
    """``locked_deal``'s checks on a live deal the caller locked and read in this unit of work."""
    deal = checked_deal(principal, found)
    writable_directions(principal, deal.directions)
    return deal


async def write_deal(
    uow: UnitOfWork,
    current: Deal,
    *,
    expected: set[int],
    values: dict[str, Any],
    action: str,
    changes: dict[str, dict[str, Any]],
    updated: dict[str, Any],
) -> Deal:
    """A new version of a deal locked by ``locked_deal`` (``updated``: its new field values),
    audited and announced as ``deal.changed``."""
    new = current.model_copy(update={**updated, "version": current.version + 1})
    row = await write_version_row(
        uow,
        DEAL,
        current.id,
        current=current.version,
        expected=expected,
        values=values,
        action=action,
        changes=changes,
        events=[publishing.deal_changed(uow.outbox, new, changes, uow.actor)],
    )
    return Deal.model_validate(dict(row))


async def _reloaded(session: AsyncSession, deal_id: uuid.UUID) -> Deal:
    found = await queries.load(session, deal_id)
    assert found is not None
    return found[0]


async def update_deal(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    deal_id: uuid.UUID,
    patch: DealPatch,
    expected: set[int],
) -> Deal:
    """Apply a merge patch (no change: no version); moving between directions needs both."""
    async with pipelines.work(runtime, principal) as uow:
        return await patch_deal(uow, principal, deal_id, patch, expected)


async def patch_deal(
    uow: UnitOfWork,
    principal: Principal,
    deal_id: uuid.UUID,
    patch: DealPatch,
    expected: set[int],
    current: Deal | None = None,
) -> Deal:
    """``update_deal`` inside a unit of work someone else owns (automation's actions;
    ``current``: the deal as ``locked_deal`` returned it in this unit of work, not read again)."""
    if current is None:
        current = await locked_deal(uow, principal, deal_id)
    check_version(expected, current.version)
    try:
        fields = patched_fields(current.fields(), patch)
    except ValidationError as exc:
        raise invalid([dict(error) for error in exc.errors(include_url=False)]) from None
    changes = changes_between(current.fields(), fields)
    if not changes:
        return current
    if "directions" in changes:
        pipeline = await _pipeline(uow.session, principal, current.pipeline_id)
        fields.directions = _directions(principal, pipeline, fields.directions)
    assert fields.directions is not None
    await _check_references(uow.session, principal, fields, fields.directions, set(changes))
    new = current.model_copy(update={**fields.model_dump(), "version": current.version + 1})
    events = [
        publishing.deal_changed(
            uow.outbox, new, changes, uow.actor, previous_directions=current.directions
        )
    ]
    values = queries.storage_values(fields)
    if uow.defer_at is not None:  # the caller locked the deal; written with its batch
        await defer_version(
            uow,
            DEAL,
            deal_id,
            current=current.version,
            expected=expected,
            values=values,
            action="updated",
            changes=changes,
            events=events,
        )
        return current.model_copy(  # the checked fields as they are: nothing to validate again
            update={
                **{name: getattr(fields, name) for name in type(fields).model_fields},
                "version": current.version + 1,
                "updated_at": uow.defer_at,
                "updated_by": uow.actor.subject,
            }
        )
    row = await write_version_row(
        uow,
        DEAL,
        deal_id,
        current=current.version,
        expected=expected,
        values=values,
        action="updated",
        changes=changes,
        events=events,
    )
    return Deal.model_validate(dict(row))


async def move_deal(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    deal_id: uuid.UUID,
    move: Move,
    expected: set[int],
) -> Deal:
    """Move a deal to another stage of its pipeline: the stage it leaves must have its
    playbook's fields filled (422 naming them); a won or lost stage closes the deal (a loss
    needs one of the pipeline's lost reasons); the move enters the stage history."""
    async with pipelines.work(runtime, principal) as uow:
        return await move_in(uow, principal, deal_id, move, expected)


async def move_in(
    uow: UnitOfWork, principal: Principal, deal_id: uuid.UUID, move: Move, expected: set[int]
) -> Deal:
    """``move_deal`` inside a unit of work someone else owns (automation's actions)."""
    current = await locked_deal(uow, principal, deal_id)
    check_version(expected, current.version)
    pipeline = await pipelines.visible_pipeline(
        uow.session, principal, current.pipeline_id, lock="share", deleted=None
    )
    target = pipeline.stage(move.stage_id)
    if target is None or target.archived:
        raise invalid_field("stage_id", "no such live stage in the pipeline", "unknown_reference")
    if target.id == current.stage_id:
        raise Conflict("The deal is already in this stage.", kind="already-in-stage")
    leaving = pipeline.stage(current.stage_id)
    missing = missing_fields(current.fields(), leaving.required_fields if leaving else [])
    if missing:
        raise invalid(
            [
                {
                    "loc": tuple(name.split(".")),
                    "msg": f"required to leave the stage {leaving.name if leaving else ''}",
                    "type": "required_to_leave_stage",
                }
                for name in missing
            ]
        )
    status = status_of(target.kind)
    if status == "lost" and (move.lost_reason not in pipeline.lost_reasons):
        raise invalid_field(
            "lost_reason",
            "a lost deal needs one of the pipeline's lost reasons: "
            + ", ".join(pipeline.lost_reasons),
        )
    moved_at = datetime.now(UTC)
    values: dict[str, Any] = {
        "stage_id": target.id,
        "status": status,
        "stage_entered_at": moved_at,
        "closed_at": moved_at if status != "open" else None,
        "lost_reason": move.lost_reason if status == "lost" else None,
    }
    values["client_blocked"] = status == "open" and await _client_blocked(uow.session, current)
    new = current.model_copy(update={**values, "version": current.version + 1})
    changes = {
        name: {"old": old, "new": value}
        for name in ("stage_id", "status", "lost_reason")
        if (old := _json(getattr(current, name))) != (value := _json(values[name]))
    }
    await _record_move(
        uow,
        current,
        current.stage_id,
        target.id,
        _history_values(uow.actor, move.reason, new.version, moved_at),
    )
    row = await write_version_row(
        uow,
        DEAL,
        deal_id,
        current=current.version,
        expected=expected,
        values=values,
        action="moved",
        changes=changes,
        note=move.reason,
        events=publishing.deal_moved(
            uow.outbox,
            new,
            from_stage_id=current.stage_id,
            stage=target,
            reason=move.reason,
            moved_at=moved_at,
            actor=uow.actor,
        ),
    )
    return Deal.model_validate(dict(row))


async def _client_blocked(session: AsyncSession, deal: Deal) -> bool:
    """Whether the deal's client is blocked: an open deal's flag says it (``follow_client``
    keeps it under the deal's row lock), a closed one's is read from the client (ADR 53)."""
    if deal.status == "open":
        return deal.client_blocked
    client = await clients.organization(session, deal.organization_id)
    return client is not None and client.blocked


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


async def delete_deal(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID, expected: set[int]
) -> int:
    async with pipelines.work(runtime, principal) as uow:
        current = await locked_deal(uow, principal, deal_id)
        version = current.version + 1
        await write_version(
            uow,
            DEAL,
            deal_id,
            current=current.version,
            expected=expected,
            values=soft_delete_values(principal.subject),
            action="deleted",
            events=[
                publishing.deal_deleted(
                    runtime.outbox, current.model_copy(update={"version": version}), uow.actor
                )
            ],
        )
        return version


async def restore_deal(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID, expected: set[int]
) -> Deal:
    async with pipelines.work(runtime, principal) as uow:
        current = await locked_deal(uow, principal, deal_id, deleted=None)
        pipeline = await pipelines.visible_pipeline(
            uow.session, principal, current.pipeline_id, lock="share", deleted=None
        )
        stage = pipeline.stage(current.stage_id)
        assert stage is not None  # a stage holding deals is never deleted
        restored = current.model_copy(update={"version": current.version + 1, "deleted_at": None})
        event = publishing.deal_restored(runtime.outbox, restored, stage, uow.actor)
        await restore(uow, DEAL, current, expected, what="deal", events=[event])
        return await _reloaded(uow.session, deal_id)


async def follow_client(
    uow: UnitOfWork, before: OrganizationRecord | None, after: OrganizationRecord
) -> None:
    """What the directory did to a client means for its deals: a merged client's deals move
    to the survivor (a new version, an audit entry and an event each); a deleted one's are
    hidden until it is restored; a blocked one's open deals are flagged."""
    survivor = after.merged_into
    if survivor is not None and await clients.move_to_survivor(
        uow, before, after, DEAL, queries.client_deal_ids, _reloaded, publishing.deal_changed
    ):
        target = await clients.organization(uow.session, survivor)
        if target is not None:
            await queries.flag_client(
                uow.session, survivor, blocked=target.blocked, hidden=target.deleted
            )
        return
    await queries.flag_client(
        uow.session,
        after.organization_id,
        blocked=after.blocked,
        hidden=after.deleted and after.merged_into is None,
    )


async def follow_person(uow: UnitOfWork, before: PersonRecord | None, after: PersonRecord) -> None:
    """A merged contact person is replaced by the survivor in every deal naming it (a new
    version, an audit entry and an event each)."""
    survivor = after.merged_into
    if survivor is None or (before is not None and before.merged_into == survivor):
        return
    for deal_id in await queries.person_deal_ids(uow.session, after.person_id):
        current = await _reloaded(uow.session, deal_id)
        fields = current.fields()
        people = [survivor if pid == after.person_id else pid for pid in fields.person_ids]
        primary = (
            survivor if fields.primary_person_id == after.person_id else fields.primary_person_id
        )
        moved = fields.model_copy(
            update={"person_ids": list(dict.fromkeys(people)), "primary_person_id": primary}
        )
        changes = changes_between(fields, moved)
        await write_version(
            uow,
            DEAL,
            deal_id,
            current=current.version,
            expected={current.version},
            values={"person_ids": moved.person_ids, "primary_person_id": primary},
            action="person_merged",
            changes=changes,
            note=f"the directory merged person {after.person_id} into {survivor}",
            events=[
                publishing.deal_changed(
                    uow.outbox,
                    current.model_copy(update={"version": current.version + 1}),
                    changes,
                    uow.actor,
                )
            ],
        )
