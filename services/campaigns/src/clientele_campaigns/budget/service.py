"""Budget operations: reading an event's budget, replacing its lines (a new event version)."""

from __future__ import annotations

import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.runtime import ServiceRuntime

from clientele_campaigns import publishing
from clientele_campaigns.budget import queries
from clientele_campaigns.budget.rules import Budget, BudgetDraft, BudgetLineDraft, totals
from clientele_campaigns.campaigns import service as campaigns


def _json(lines: list[BudgetLineDraft]) -> list[dict[str, object]]:
    """The lines as the audit trail and events keep them (no ids: the budget is replaced)."""
    fields = set(BudgetLineDraft.model_fields)
    return [line.model_dump(mode="json", exclude_none=True, include=fields) for line in lines]


async def get_budget(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID
) -> Budget:
    async with runtime.sessions() as session:
        campaign = await campaigns.visible_campaign(session, principal, campaign_id)
        lines = await queries.lines(session, campaign_id)
    return Budget(
        campaign_id=campaign_id, version=campaign.version, lines=lines, totals=totals(lines)
    )


async def replace_budget(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    draft: BudgetDraft,
    expected: set[int],
) -> Budget:
    """The event's budget lines replaced as a whole (no change: no version)."""
    async with campaigns.work(runtime, principal) as uow:
        current = await campaigns.locked_campaign(uow, principal, campaign_id)
        check_version(expected, current.version)
        old = _json(list(await queries.lines(uow.session, campaign_id)))
        new = _json(list(draft.lines))
        if old != new:
            await queries.replace_lines(uow.session, campaign_id, draft.lines)
            changes = {"budget": {"old": old, "new": new}}
            after = current.model_copy(update={"version": current.version + 1})
            current = await campaigns.new_version(
                uow,
                current,
                expected,
                action="budget_changed",
                changes=changes,
                events=[publishing.campaign_changed(uow.outbox, after, changes, uow.actor)],
            )
        lines = await queries.lines(uow.session, campaign_id)
    return Budget(
        campaign_id=campaign_id, version=current.version, lines=lines, totals=totals(lines)
    )
