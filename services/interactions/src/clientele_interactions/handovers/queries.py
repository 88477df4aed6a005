"""SQL of the hand-overs."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.principal import Principal
from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.tables import client_cards, handovers, interactions
from clientele_interactions.visibility import visible_clients


async def open_planned(
    session: AsyncSession,
    principal: Principal,
    employee_id: uuid.UUID,
    organization_id: uuid.UUID | None,
) -> list[Row[Any]]:
    """The employee's planned contacts at clients the caller sees (one client's only with
    ``organization_id``), each with its card's columns (``card_<name>``), locked FOR UPDATE."""
    stmt = (
        select(interactions, *[c.label(f"card_{c.name}") for c in client_cards.c])
        .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(
            interactions.c.status == "planned",
            interactions.c.responsible_employee_id == employee_id,
            visible_clients(principal),
        )
        .order_by(interactions.c.due_at, interactions.c.id)
        .with_for_update(of=interactions)
    )
    if organization_id is not None:
        stmt = stmt.where(interactions.c.organization_id == organization_id)
    result: Any = await session.execute(stmt)
    return list(result.all())


async def insert_handover(session: AsyncSession, **values: Any) -> Row[Any]:
    result: Any = await session.execute(insert(handovers).values(**values).returning(handovers))
    row: Row[Any] = result.one()
    return row
