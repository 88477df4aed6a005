"""SQL of the unwanted-counterparty register."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, array
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.blocking import active, matches_organization, matches_person
from clientele_directory.register.rules import RegisterEntry
from clientele_directory.tables import organizations, persons, unwanted_register


def to_entry(row: Any) -> RegisterEntry:
    return RegisterEntry.model_validate(row, from_attributes=True)


async def organization_exists(session: AsyncSession, org_id: uuid.UUID) -> bool:
    found = await session.scalar(select(organizations.c.id).where(organizations.c.id == org_id))
    return found is not None


async def person_exists(session: AsyncSession, person_id: uuid.UUID) -> bool:
    found = await session.scalar(select(persons.c.id).where(persons.c.id == person_id))
    return found is not None


async def person_version(session: AsyncSession, person_id: uuid.UUID) -> int | None:
    return await session.scalar(select(persons.c.version).where(persons.c.id == person_id))


async def affected_organizations(session: AsyncSession, entry: RegisterEntry) -> list[uuid.UUID]:
    """The organizations the entry names (``matches_organization`` for this one entry): by id,
    INN or e-mail domain, each through its index. The OR of the three as a join condition
    would read every organization: 585 ms at a million (ADR 74)."""
    if entry.organization_id is not None:
        named = organizations.c.id == entry.organization_id
    elif entry.inn is not None:
        named = organizations.c.inn == entry.inn
    elif entry.email_domain is not None:
        named = organizations.c.email_domains.contains([entry.email_domain])
    else:
        return []
    rows = await session.scalars(
        select(organizations.c.id).where(named).order_by(organizations.c.id)
    )
    return list(rows)


async def affected_persons(session: AsyncSession, entry: RegisterEntry) -> list[uuid.UUID]:
    """The persons the entry names (``matches_person`` for this one entry): by id or e-mail
    domain, each through its index."""
    if entry.person_id is not None:
        named = persons.c.id == entry.person_id
    elif entry.email_domain is not None:
        named = persons.c.email_domains.contains([entry.email_domain])
    else:
        return []
    rows = await session.scalars(select(persons.c.id).where(named).order_by(persons.c.id))
    return list(rows)


async def blocked(
    session: AsyncSession,
    org_ids: list[uuid.UUID],
    person_ids: list[uuid.UUID],
    *,
    without: uuid.UUID | None = None,
) -> dict[str, set[uuid.UUID]]:
    """Which of these records match an active entry (other than ``without``) at this point of
    the transaction."""
    entries: list[ColumnElement[bool]] = [active]
    if without is not None:
        entries.append(unwanted_register.c.id != without)
    orgs = await session.scalars(
        select(organizations.c.id)
        .join(unwanted_register, and_(matches_organization(), *entries))
        .where(organizations.c.id.in_(org_ids))
    )
    people = await session.scalars(
        select(persons.c.id)
        .join(unwanted_register, and_(matches_person(), *entries))
        .where(persons.c.id.in_(person_ids))
    )
    return {"organizations": set(orgs), "persons": set(people)}


async def insert_entry(session: AsyncSession, values: dict[str, Any]) -> RegisterEntry:
    row = (
        await session.execute(
            insert(unwanted_register).values(**values).returning(unwanted_register)
        )
    ).one()
    return to_entry(row)


async def listed(
    session: AsyncSession, *, basis: str | None, include_removed: bool, limit: int
) -> list[RegisterEntry]:
    stmt = select(unwanted_register).order_by(
        unwanted_register.c.created_at.desc(), unwanted_register.c.id
    )
    if not include_removed:
        stmt = stmt.where(active)
    if basis is not None:
        stmt = stmt.where(unwanted_register.c.basis == basis)
    return [to_entry(row) for row in (await session.execute(stmt.limit(limit))).all()]


async def matching(
    session: AsyncSession, *, inn: str | None, email: str | None, domains: set[str]
) -> list[Any]:
    """The active entries naming this INN, e-mail address or domains, oldest first."""
    conditions = []
    if inn is not None:
        conditions.append(unwanted_register.c.inn == inn)
        conditions.append(
            unwanted_register.c.organization_id.in_(
                select(organizations.c.id).where(organizations.c.inn == inn)
            )
        )
    if domains:
        conditions.append(unwanted_register.c.email_domain.in_(sorted(domains)))
    if email is not None:
        # case-folded, through the folded e-mail indexes (a scan of every record otherwise)
        folded = array[Any]([func.lower(email)], type_=Text).cast(ARRAY(Text))
        conditions.append(
            unwanted_register.c.person_id.in_(
                select(persons.c.id).where(
                    func.directory_fold_emails(persons.c.emails).op("@>")(folded)
                )
            )
        )
        conditions.append(
            unwanted_register.c.organization_id.in_(
                select(organizations.c.id).where(
                    func.directory_fold_emails(organizations.c.emails).op("@>")(folded)
                )
            )
        )
    return list(
        (
            await session.execute(
                select(unwanted_register)
                .where(active, or_(*conditions))
                .order_by(unwanted_register.c.created_at)
            )
        ).all()
    )


async def load(
    session: AsyncSession, entry_id: uuid.UUID, *, lock: bool = False
) -> RegisterEntry | None:
    stmt = select(unwanted_register).where(unwanted_register.c.id == entry_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    return to_entry(row) if row is not None else None


async def mark_removed(
    session: AsyncSession, entry_id: uuid.UUID, *, subject: str, reason: str | None
) -> RegisterEntry:
    row = (
        await session.execute(
            update(unwanted_register)
            .where(unwanted_register.c.id == entry_id)
            .values(removed_at=func.now(), removed_by=subject, removal_reason=reason)
            .returning(unwanted_register)
        )
    ).one()
    return to_entry(row)


async def organization_matches(session: AsyncSession, org_id: uuid.UUID) -> list[Any]:
    """The active entries an organization matches, oldest first."""
    return list(
        (
            await session.execute(
                select(unwanted_register)
                .join(organizations, matches_organization())
                .where(organizations.c.id == org_id, active)
                .order_by(unwanted_register.c.created_at, unwanted_register.c.id)
            )
        ).all()
    )


async def person_matches(session: AsyncSession, person_id: uuid.UUID) -> list[Any]:
    """The active entries a person matches, oldest first."""
    return list(
        (
            await session.execute(
                select(unwanted_register)
                .join(persons, matches_person())
                .where(persons.c.id == person_id, active)
                .order_by(unwanted_register.c.created_at, unwanted_register.c.id)
            )
        ).all()
    )
