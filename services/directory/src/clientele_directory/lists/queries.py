"""SQL of lists of organizations and their static members."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import ColumnElement, delete, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.lists.rules import OrganizationList
from clientele_directory.tables import organization_list_members, organization_lists, organizations


def to_list(row: Any) -> OrganizationList:
    return OrganizationList.model_validate(row, from_attributes=True)


async def visible(
    session: AsyncSession, principal: Principal, list_id: uuid.UUID, *, for_update: bool = False
) -> OrganizationList | None:
    """The live list if the principal shares one of its directions, optionally locked."""
    stmt = select(organization_lists).where(
        organization_lists.c.id == list_id,
        organization_lists.c.deleted_at.is_(None),
        visible_to(principal, organization_lists.c.directions),
    )
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    return to_list(row) if row is not None else None


async def load(session: AsyncSession, list_id: uuid.UUID) -> OrganizationList:
    """A list the caller has just written."""
    row = (
        await session.execute(select(organization_lists).where(organization_lists.c.id == list_id))
    ).one()
    return to_list(row)


async def list_visible(
    session: AsyncSession, principal: Principal, *, limit: int
) -> list[OrganizationList]:
    """The live lists the principal may see, by name."""
    rows = (
        await session.execute(
            select(organization_lists)
            .where(
                organization_lists.c.deleted_at.is_(None),
                visible_to(principal, organization_lists.c.directions),
            )
            .order_by(organization_lists.c.name, organization_lists.c.id)
            .limit(limit)
        )
    ).all()
    return [to_list(row) for row in rows]


async def insert_list(session: AsyncSession, values: dict[str, Any]) -> OrganizationList:
    row = (
        await session.execute(
            insert(organization_lists).values(**values).returning(organization_lists)
        )
    ).one()
    return to_list(row)


def member_condition(list_id: uuid.UUID) -> ColumnElement[bool]:
    """SQL: the organization row is a member of the static list."""
    return organizations.c.id.in_(
        select(organization_list_members.c.organization_id).where(
            organization_list_members.c.list_id == list_id
        )
    )


async def visible_organizations(
    session: AsyncSession, principal: Principal, ids: set[uuid.UUID], *, live: bool = True
) -> set[uuid.UUID]:
    """Which of ``ids`` name organizations the principal sees (``live``: not deleted)."""
    if not ids:
        return set()
    conditions = [organizations.c.id.in_(ids), visible_to(principal, organizations.c.directions)]
    if live:
        conditions.append(organizations.c.deleted_at.is_(None))
    return set(await session.scalars(select(organizations.c.id).where(*conditions)))


async def matching_organizations(
    session: AsyncSession, principal: Principal, *, inns: list[str], ids: list[uuid.UUID]
) -> list[Any]:
    """The live organizations the principal sees with one of these INNs or ids (id, inn)."""
    return list(
        (
            await session.execute(
                select(organizations.c.id, organizations.c.inn).where(
                    organizations.c.deleted_at.is_(None),
                    visible_to(principal, organizations.c.directions),
                    (organizations.c.inn.in_(inns)) | (organizations.c.id.in_(ids)),
                )
            )
        ).all()
    )


async def add_where(
    session: AsyncSession, list_id: uuid.UUID, subject: str, conditions: list[ColumnElement[bool]]
) -> list[uuid.UUID]:
    """Add every organization that meets ``conditions``; the ids added (members already there
    are left as they are)."""
    chosen = select(
        literal(list_id).label("list_id"),
        organizations.c.id,
        literal(subject).label("added_by"),
    ).where(*conditions)
    stmt = (
        pg_insert(organization_list_members)
        .from_select(["list_id", "organization_id", "added_by"], chosen)
        .on_conflict_do_nothing()
        .returning(organization_list_members.c.organization_id)
    )
    return sorted((await session.scalars(stmt)).all())


async def remove(
    session: AsyncSession, list_id: uuid.UUID, organization_ids: set[uuid.UUID]
) -> list[uuid.UUID]:
    """Remove these members; the ids that were members."""
    removed = await session.scalars(
        delete(organization_list_members)
        .where(
            organization_list_members.c.list_id == list_id,
            organization_list_members.c.organization_id.in_(sorted(organization_ids)),
        )
        .returning(organization_list_members.c.organization_id)
    )
    return sorted(removed.all())
