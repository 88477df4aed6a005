"""The lists read model (from the directory's state topics) and the SQL of list resolutions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.directory import ListMemberState, OrganizationListState
from clientele_shared.events.state import ReadModel
from sqlalchemy import Select, Uuid, func, insert, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.lists.rules import Resolution, ResolutionMember
from clientele_campaigns.participants.queries import candidates
from clientele_campaigns.tables import (
    directory,
    directory_list_members,
    directory_lists,
    list_resolution_members,
    list_resolutions,
)


def _list_row(state: OrganizationListState) -> dict[str, Any]:
    return {
        "list_id": state.list_id,
        "name": state.name,
        "kind": state.kind,
        "filter": state.filter,
        "directions": sorted(set(state.directions)),
        "deleted": state.deleted,
        "version": state.version,
        "state_revision": state.revision,
        "updated_at": state.updated_at or datetime.now(UTC),
    }


def _member_row(state: ListMemberState) -> dict[str, Any]:
    return {
        "list_id": state.list_id,
        "organization_id": state.organization_id,
        "version": state.version,
        "state_revision": state.revision,
    }


LISTS = ReadModel(directory_lists, _list_row, key="list_id")
"""The directory's lists, from its lists state topic (ADR 18)."""
MEMBERS = ReadModel(directory_list_members, _member_row, key=("list_id", "organization_id"))
"""The static lists' members, from the list members state topic (a tombstone: a member left)."""


async def list_name(
    session: AsyncSession, list_id: uuid.UUID, principal: Principal | None = None
) -> str | None:
    """The name of a list that exists (not deleted), and shares a direction with the principal
    when one is given."""
    stmt = select(directory_lists.c.name).where(
        directory_lists.c.list_id == list_id, directory_lists.c.deleted.is_(False)
    )
    if principal is not None:
        stmt = stmt.where(visible_to(principal, directory_lists.c.directions))
    return await session.scalar(stmt)


async def list_kind(session: AsyncSession, list_id: uuid.UUID) -> str | None:
    """``static`` or ``dynamic`` for a list that exists (not deleted), None otherwise."""
    return await session.scalar(
        select(directory_lists.c.kind).where(
            directory_lists.c.list_id == list_id, directory_lists.c.deleted.is_(False)
        )
    )


async def visible_kind(
    session: AsyncSession, principal: Principal, list_id: uuid.UUID
) -> str | None:
    """``static`` or ``dynamic`` for a live list sharing a direction with the principal, None
    for any other (unknown, deleted or another direction's)."""
    return await session.scalar(
        select(directory_lists.c.kind).where(
            directory_lists.c.list_id == list_id,
            directory_lists.c.deleted.is_(False),
            visible_to(principal, directory_lists.c.directions),
        )
    )


def given(ids: list[uuid.UUID]) -> Select[Any]:
    """Organization ids read elsewhere (a dynamic list the directory resolved), as a select of
    ``organization_id`` (one array parameter)."""
    return select(func.unnest(literal(ids, ARRAY(Uuid))).label("organization_id"))


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
    session: AsyncSession,
    principal: Principal,
    resolution_id: uuid.UUID,
    after: uuid.UUID | None,
    limit: int,
) -> list[ResolutionMember]:
    stmt = select(list_resolution_members).where(
        list_resolution_members.c.resolution_id == resolution_id,
        directory.may_name(principal, list_resolution_members.c.organization_id),
    )
    if after is not None:
        stmt = stmt.where(list_resolution_members.c.organization_id > after)
    rows = (
        await session.execute(stmt.order_by(list_resolution_members.c.organization_id).limit(limit))
    ).mappings()
    return [ResolutionMember.model_validate(dict(row)) for row in rows]
