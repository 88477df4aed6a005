"""SQL of registrations."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String, bindparam, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.registration.rules import Registration
from clientele_campaigns.tables import directory, mailing_contacts, registrations


async def organization_by_inn(session: AsyncSession, inn: str) -> uuid.UUID | None:
    """The live organization with this INN in the read model (the first by id if several)."""
    organizations = directory.organizations
    return await session.scalar(
        select(organizations.c.organization_id)
        .where(organizations.c.inn == inn, ~organizations.c.deleted)
        .order_by(organizations.c.organization_id)
        .limit(1)
    )


async def persons_by_contact(
    session: AsyncSession, keys: list[str]
) -> list[tuple[uuid.UUID, list[uuid.UUID]]]:
    """Up to two live, unblocked persons with any of these e-mail or phone keys, each with the
    organizations they work at (two: the match is not unique)."""
    persons = directory.persons
    contacts = mailing_contacts
    rows = await session.execute(
        select(contacts.c.person_id, contacts.c.organization_ids)
        .join(persons, persons.c.person_id == contacts.c.person_id)
        .where(
            contacts.c.match_keys.overlap(
                func.cast(bindparam(None, keys, type_=ARRAY(String)), ARRAY(String))
            ),
            ~persons.c.deleted,
            ~persons.c.blocked,
        )
        .order_by(contacts.c.person_id)
        .limit(2)
    )
    return [(row.person_id, list(row.organization_ids)) for row in rows]


async def insert_registration(session: AsyncSession, values: dict[str, Any]) -> Registration:
    row = (
        (await session.execute(insert(registrations).values(**values).returning(registrations)))
        .mappings()
        .one()
    )
    return Registration.model_validate(dict(row))


async def by_email(
    session: AsyncSession, campaign_id: uuid.UUID, email: str
) -> Registration | None:
    """The event's registration of this e-mail address (case-insensitive), if any."""
    row = (
        (
            await session.execute(
                select(registrations)
                .where(
                    registrations.c.campaign_id == campaign_id,
                    func.lower(registrations.c.email) == email.lower(),
                )
                .order_by(registrations.c.registered_at)
                .limit(1)
            )
        )
        .mappings()
        .first()
    )
    return Registration.model_validate(dict(row)) if row else None


async def by_code(
    session: AsyncSession, campaign_id: uuid.UUID, code_hash: str
) -> Registration | None:
    row = (
        (
            await session.execute(
                select(registrations)
                .where(
                    registrations.c.campaign_id == campaign_id,
                    registrations.c.code_hash == code_hash,
                )
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    return Registration.model_validate(dict(row)) if row else None


async def check_in(session: AsyncSession, registration_id: uuid.UUID, subject: str) -> Registration:
    row = (
        (
            await session.execute(
                update(registrations)
                .where(registrations.c.id == registration_id)
                .values(checked_in_at=func.now(), checked_in_by=subject)
                .returning(registrations)
            )
        )
        .mappings()
        .one()
    )
    return Registration.model_validate(dict(row))


async def listed(
    session: AsyncSession, campaign_id: uuid.UUID, status: str | None, limit: int
) -> list[Registration]:
    stmt = select(registrations).where(registrations.c.campaign_id == campaign_id)
    if status is not None:
        stmt = stmt.where(registrations.c.status == status)
    rows = (
        await session.execute(stmt.order_by(registrations.c.registered_at).limit(limit))
    ).mappings()
    return [Registration.model_validate(dict(row)) for row in rows]
