"""SQL of budget lines."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.budget.rules import BudgetLine, BudgetLineDraft
from clientele_campaigns.tables import budget_lines


async def lines(session: AsyncSession, campaign_id: uuid.UUID) -> list[BudgetLine]:
    rows = (
        await session.execute(
            select(budget_lines)
            .where(budget_lines.c.campaign_id == campaign_id)
            .order_by(budget_lines.c.position)
        )
    ).mappings()
    return [BudgetLine.model_validate(dict(row)) for row in rows]


async def replace_lines(
    session: AsyncSession, campaign_id: uuid.UUID, new: list[BudgetLineDraft]
) -> None:
    await session.execute(delete(budget_lines).where(budget_lines.c.campaign_id == campaign_id))
    if new:
        await session.execute(
            insert(budget_lines),
            [
                {
                    **line.model_dump(),
                    "id": uuid.uuid4(),
                    "campaign_id": campaign_id,
                    "position": position,
                }
                for position, line in enumerate(new)
            ],
        )
