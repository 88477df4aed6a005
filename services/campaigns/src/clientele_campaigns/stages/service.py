"""Stage operations: each a new version of the event (audit entry with the stages before and
after)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork

from clientele_campaigns.campaigns import queries as campaign_queries
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.campaigns.rules import Campaign, Stage
from clientele_campaigns.stages import queries
from clientele_campaigns.stages.rules import (
    MAX_STAGES,
    StageDraft,
    StageOrder,
    StagePatch,
    is_permutation,
    name_taken,
    snapshot,
)


def _stage(campaign: Campaign, stage_id: uuid.UUID) -> Stage:
    stage = campaign.stage(stage_id)
    if stage is None:
        raise NotFound("The stage does not exist.")
    return stage


async def _changed(uow: UnitOfWork, before: Campaign, expected: set[int], action: str) -> Campaign:
    """The event's next version after a stage change, its stages before and after audited."""
    after = await campaign_queries.load(uow.session, before.id)
    assert after is not None
    changes: dict[str, Any] = {
        "stages": {"old": snapshot(before.stages), "new": snapshot(after.stages)}
    }
    return await campaigns.new_version(uow, before, expected, action=action, changes=changes)


async def add_stage(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    draft: StageDraft,
    expected: set[int],
) -> Campaign:
    async with campaigns.work(runtime, principal) as uow:
        current = await campaigns.locked_campaign(uow, principal, campaign_id)
        check_version(expected, current.version)
        if name_taken(current.stages, draft.name):
            raise invalid_field("name", "stage names must be distinct within a marketing event")
        if len(current.stages) >= MAX_STAGES:
            raise invalid_field("name", f"a marketing event has at most {MAX_STAGES} stages")
        stage_id = await queries.insert_stage(uow.session, campaign_id, draft.name, draft.due_date)
        order = [stage.id for stage in current.stages]
        order.insert(len(order) if draft.position is None else draft.position, stage_id)
        await queries.set_positions(uow.session, order)
        return await _changed(uow, current, expected, "stage_added")


async def update_stage(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    stage_id: uuid.UUID,
    patch: StagePatch,
    expected: set[int],
) -> Campaign:
    async with campaigns.work(runtime, principal) as uow:
        current = await campaigns.locked_campaign(uow, principal, campaign_id)
        _stage(current, stage_id)
        check_version(expected, current.version)
        values = patch.model_dump(exclude_unset=True)
        if "name" in values and name_taken(current.stages, values["name"], but=stage_id):
            raise invalid_field("name", "stage names must be distinct within a marketing event")
        await queries.change_stage(uow.session, stage_id, values)
        return await _changed(uow, current, expected, "stage_changed")


async def reorder_stages(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    order: StageOrder,
    expected: set[int],
) -> Campaign:
    async with campaigns.work(runtime, principal) as uow:
        current = await campaigns.locked_campaign(uow, principal, campaign_id)
        check_version(expected, current.version)
        if not is_permutation(current.stages, order.stage_ids):
            raise invalid_field("stage_ids", "name every stage of the event exactly once")
        await queries.set_positions(uow.session, order.stage_ids)
        return await _changed(uow, current, expected, "stages_reordered")


async def delete_stage(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    stage_id: uuid.UUID,
    expected: set[int],
) -> Campaign:
    """A stage without participants (409 while it holds some; the last one stays)."""
    async with campaigns.work(runtime, principal) as uow:
        current = await campaigns.locked_campaign(uow, principal, campaign_id)
        _stage(current, stage_id)
        check_version(expected, current.version)
        if len(current.stages) == 1:
            raise Conflict("An event keeps at least one stage.", kind="last-stage")
        if await queries.stage_holds_participants(uow.session, stage_id):
            raise Conflict(
                "The stage holds participants; move them first.", kind="stage-holds-participants"
            )
        await queries.change_stage(uow.session, stage_id, {"deleted": True})
        await queries.set_positions(
            uow.session, [stage.id for stage in current.stages if stage.id != stage_id]
        )
        return await _changed(uow, current, expected, "stage_deleted")
