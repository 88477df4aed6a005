"""Campaigns HTTP API (marketing events; the rest arrives with its own issue)."""

import uuid
from typing import Annotated

from clientele_shared.auth.access import apply_direction_filter, writable_directions
from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import APIRouter, Depends, status
from sqlalchemy import insert, select

from clientele_campaigns.domain import Campaign, CampaignDraft, Money
from clientele_campaigns.store import campaigns

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"])
Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_campaign(
    draft: CampaignDraft, principal: CurrentPrincipal, runtime: Runtime
) -> Campaign:
    writable_directions(principal, draft.directions)
    campaign = Campaign(**draft.model_dump(), id=uuid.uuid4())
    row = campaign.model_dump(exclude={"budget"})
    row.update(budget_amount=campaign.budget.amount, budget_currency=campaign.budget.currency)
    async with runtime.sessions() as session, session.begin():
        await session.execute(insert(campaigns).values(**row))
    return campaign


@router.get("")
async def list_campaigns(principal: CurrentPrincipal, runtime: Runtime) -> list[Campaign]:
    """Campaigns of the caller's directions, newest plan first."""
    stmt = apply_direction_filter(
        select(campaigns).order_by(campaigns.c.planned_start.desc()),
        principal,
        campaigns.c.directions,
    )
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).mappings().all()
    return [
        Campaign(
            **{k: v for k, v in row.items() if not k.startswith("budget_") and k != "created_at"},
            budget=Money(amount=row["budget_amount"], currency=row["budget_currency"]),
        )
        for row in rows
    ]
