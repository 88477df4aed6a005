"""SQL of the unmatched addresses.

Visibility follows the captured interaction's client; the addresses of mailbox mail that found
no client are seen by whoever sees one of its candidate clients, or every direction.
"""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import Row, Select, and_, any_, exists, func, or_, select, true
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_interactions.tables import client_cards, interactions, unmatched_addresses
from clientele_interactions.visibility import visible_clients

candidate = client_cards.alias("candidate")


def _uncaptured_visible(principal: Principal) -> ColumnElement[bool]:
    if principal.sees_all_directions:
        return true()
    return exists(
        select(candidate.c.organization_id).where(
            candidate.c.organization_id == any_(unmatched_addresses.c.candidates),
            ~candidate.c.deleted,
            visible_to(principal, candidate.c.directions),
        )
    )


def _visible(principal: Principal) -> Select[Any]:
    """Unmatched addresses the principal may see, with their interaction's client."""
    return (
        select(unmatched_addresses, interactions.c.organization_id)
        .outerjoin(interactions, interactions.c.id == unmatched_addresses.c.interaction_id)
        .outerjoin(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(
            or_(
                and_(unmatched_addresses.c.interaction_id.is_not(None), visible_clients(principal)),
                and_(
                    unmatched_addresses.c.interaction_id.is_(None),
                    _uncaptured_visible(principal),
                ),
            )
        )
    )


async def visible_items(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str,
    organization_id: uuid.UUID | None,
    interaction_id: uuid.UUID | None,
    address: str | None,
    limit: int,
    offset: int,
) -> list[Row[Any]]:
    stmt = _visible(principal).where(unmatched_addresses.c.status == status)
    if organization_id is not None:
        stmt = stmt.where(interactions.c.organization_id == organization_id)
    if interaction_id is not None:
        stmt = stmt.where(unmatched_addresses.c.interaction_id == interaction_id)
    if address is not None:
        stmt = stmt.where(unmatched_addresses.c.address == address)
    stmt = stmt.order_by(unmatched_addresses.c.seq)
    return list((await session.execute(stmt.limit(limit).offset(offset))).all())


async def visible_item(
    session: AsyncSession, principal: Principal, item_id: uuid.UUID, *, lock: bool
) -> Row[Any] | None:
    stmt = _visible(principal).where(unmatched_addresses.c.id == item_id)
    if lock:
        stmt = stmt.with_for_update(of=unmatched_addresses)
    result: Any = await session.execute(stmt)
    found: Row[Any] | None = result.first()
    return found


async def resolve(
    session: AsyncSession,
    item_id: uuid.UUID,
    *,
    status: str,
    resolved_by: str,
    person_id: uuid.UUID | None = None,
) -> Row[Any]:
    result: Any = await session.execute(
        unmatched_addresses.update()
        .where(unmatched_addresses.c.id == item_id)
        .values(
            status=status,
            person_id=person_id,
            resolved_at=func.now(),
            resolved_by=resolved_by,
        )
        .returning(unmatched_addresses)
    )
    row: Row[Any] = result.one()
    return row


async def insert_items(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Row[Any]]:
    """Insert unmatched addresses; one already kept (the same address of the same interaction,
    or of the same mailbox message) is left as it is and not answered."""
    result: Any = await session.execute(
        insert(unmatched_addresses)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(unmatched_addresses)
    )
    return list(result.all())
