"""Playbook operations on a deal: read what its stage asks, tick the stage's checklist."""

from __future__ import annotations

import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import invalid_field
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.deals import service as deals
from clientele_pipeline.deals.rules import Deal, missing_fields
from clientele_pipeline.pipelines import service as pipelines
from clientele_pipeline.pipelines.rules import Stage
from clientele_pipeline.playbooks.rules import ChecklistItem, Playbook, Ticks, ticked


async def _current_stage(session: AsyncSession, principal: Principal, deal: Deal) -> Stage:
    pipeline = await pipelines.visible_pipeline(
        session, principal, deal.pipeline_id, lock="share", deleted=None
    )
    stage = pipeline.stage(deal.stage_id)
    assert stage is not None  # a stage holding deals is never deleted
    return stage


async def deal_playbook(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID
) -> Playbook:
    async with runtime.sessions() as session:
        deal = await deals.visible_deal(session, principal, deal_id)
        stage = await _current_stage(session, principal, deal)
    done = set(deal.checklist_ticks.get(str(stage.id), []))
    return Playbook(
        stage_id=stage.id,
        stage_name=stage.name,
        required_fields=stage.required_fields,
        missing_fields=missing_fields(deal.fields(), stage.required_fields),
        checklist=[ChecklistItem(item=item, done=item in done) for item in stage.checklist],
        script=stage.script.model_dump(mode="json") if stage.script else None,
    )


async def tick_checklist(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    deal_id: uuid.UUID,
    ticks: Ticks,
    expected: set[int],
) -> Deal:
    """Set which items of the current stage's checklist are done (422 for other items)."""
    async with pipelines.work(runtime, principal) as uow:
        current = await deals.locked_deal(uow, principal, deal_id)
        check_version(expected, current.version)
        stage = await _current_stage(uow.session, principal, current)
        try:
            done = ticked(stage.checklist, ticks.done)
        except ValueError as exc:
            raise invalid_field("done", str(exc)) from None
        key = str(stage.id)
        before = current.checklist_ticks.get(key, [])
        if done == before:
            return current
        after = {**current.checklist_ticks, key: done}
        changes = {f"checklist_ticks.{key}": {"old": before, "new": done}}
        return await deals.write_deal(
            uow,
            current,
            expected=expected,
            values={"checklist_ticks": after},
            action="checklist_ticked",
            changes=changes,
            updated={"checklist_ticks": after},
        )
