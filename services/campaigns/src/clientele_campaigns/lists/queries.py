"""SQL of the lists read model and of list resolutions."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, delete, func, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.lists.rules import Resolution, ResolutionMember
from clientele_campaigns.participants.queries import candidates
from clientele_campaigns.tables import (
    directory_list_members,
    directory_lists,
    list_resolution_members,
    list_resolutions,
)


async def apply_membership(
    session: AsyncSession,
    list_id: uuid.UUID,
    name: str,
    added: list[uuid.UUID],
    removed: list[uuid.UUID],
) -> None:
    """Fold one membership change into the read model (repeating one changes nothing)."""
    stmt = upsert(directory_lists).values(list_id=list_id, name=name)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["list_id"], set_={"name": name, "updated_at": func.now()}
        )
    )
    if added:
        await session.execute(
            upsert(directory_list_members)
            .values([{"list_id": list_id, "organization_id": org} for org in added])
            .on_conflict_do_nothing()
        )
    if removed:
        await session.execute(
            delete(directory_list_members).where(
                directory_list_members.c.list_id == list_id,
                directory_list_members.c.organization_id.in_(removed),
            )
        )


async def list_name(session: AsyncSession, list_id: uuid.UUID) -> str | None:
    return await session.scalar(
        select(directory_lists.c.name).where(directory_lists.c.list_id == list_id)
    )


def members(list_id: uuid.UUID) -> Select[Any]:
    """The static list's members now (``organization_id``), as the read model holds them."""
    return select(directory_list_members.c.organization_id).where(
        directory_list_members.c.list_id == list_id
    )


async def record_resolution(session: AsyncSession, values: dict[str, Any]) -> None:
    """The resolution and each of its members' outcome, from the addition's candidates."""
    await session.execute(insert(list_resolutions).values(**values))
    await session.execute(
        insert(list_resolution_members).from_select(
            ["resolution_id", "organization_id", "outcome"],
            select(literal(values["id"]), candidates.c.organization_id, candidates.c.outcome),
        )
    )


async def resolution(
    session: AsyncSession, campaign_id: uuid.UUID, resolution_id: uuid.UUID
) -> Resolution | None:
    row = (
        (
            await session.execute(
                select(list_resolutions).where(
                    list_resolutions.c.id == resolution_id,
                    list_resolutions.c.campaign_id == campaign_id,
                )
            )
        )
        .mappings()
        .first()
    )
    return Resolution.model_validate(dict(row)) if row else None


async def resolutions(session: AsyncSession, campaign_id: uuid.UUID) -> list[Resolution]:
    rows = (
        await session.execute(
            select(list_resolutions)
            .where(list_resolutions.c.campaign_id == campaign_id)
            .order_by(list_resolutions.c.resolved_at, list_resolutions.c.id)
        )
    ).mappings()
    return [Resolution.model_validate(dict(row)) for row in rows]


async def resolution_members(
    session: AsyncSession, resolution_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[ResolutionMember]:
    stmt = select(list_resolution_members).where(
        list_resolution_members.c.resolution_id == resolution_id
    )
    if after is not None:
        stmt = stmt.where(list_resolution_members.c.organization_id > after)
    rows = (
        await session.execute(stmt.order_by(list_resolution_members.c.organization_id).limit(limit))
    ).mappings()
    return [ResolutionMember.model_validate(dict(row)) for row in rows]
