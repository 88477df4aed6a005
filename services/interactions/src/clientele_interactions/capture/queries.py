"""SQL of e-mail capture: who the addresses are, where the persons work, what was captured."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.tables import (
    client_cards,
    employees,
    employments,
    interactions,
    persons,
)
from clientele_interactions.visibility import visible_clients


def _subject_id(principal: Principal) -> uuid.UUID | None:
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


async def persons_by_address(
    session: AsyncSession, principal: Principal, addresses: list[str]
) -> dict[str, list[Any]]:
    """Persons the caller may see by e-mail address (their own addresses and those of their
    positions). Persons of other directions are left out: their addresses are unknown to the
    caller, exactly as an address nobody has."""
    found: dict[str, list[Any]] = {}
    if not addresses:
        return found
    seen = and_(~persons.c.deleted, visible_to(principal, persons.c.directions))
    own = await session.execute(
        select(persons.c.person_id, persons.c.emails).where(
            persons.c.emails.overlap(addresses), seen
        )
    )
    work = await session.execute(
        select(employments.c.person_id, employments.c.emails)
        .join(persons, persons.c.person_id == employments.c.person_id)
        .where(employments.c.emails.overlap(addresses), ~employments.c.deleted, seen)
    )
    for person_id, emails in [*work.all(), *own.all()]:
        for address in emails:
            if address in addresses and person_id not in found.setdefault(address, []):
                found[address].append(person_id)
    return found


async def employees_by_address(
    session: AsyncSession, principal: Principal, addresses: list[str]
) -> dict[str, Any]:
    """The company's active employees the caller may see (himself and those sharing one of his
    directions, as in the directory) by e-mail address; others are unknown addresses to the
    caller (unless of an own domain)."""
    if not addresses:
        return {}
    rows = await session.execute(
        select(employees.c.email, employees.c.employee_id).where(
            employees.c.email.in_(addresses),
            employees.c.active,
            or_(
                visible_to(principal, employees.c.directions),
                employees.c.employee_id == _subject_id(principal),
            ),
        )
    )
    return dict(rows.all())


async def employed_at(
    session: AsyncSession, organization_id: uuid.UUID, person_ids: list[Any]
) -> set[Any]:
    if not person_ids:
        return set()
    rows = await session.scalars(
        select(employments.c.person_id).where(
            employments.c.organization_id == organization_id,
            employments.c.person_id.in_(person_ids),
            ~employments.c.deleted,
        )
    )
    return set(rows.all())


async def cards_employing(
    session: AsyncSession, principal: Principal, person_ids: list[Any]
) -> list[ClientCard]:
    """The visible clients where these persons work."""
    if not person_ids:
        return []
    stmt = (
        select(client_cards)
        .join(employments, employments.c.organization_id == client_cards.c.organization_id)
        .where(
            employments.c.person_id.in_(person_ids),
            ~employments.c.deleted,
            visible_clients(principal),
        )
        .distinct()
    )
    return [
        ClientCard.model_validate(row, from_attributes=True)
        for row in (await session.execute(stmt)).all()
    ]


async def captured_before(
    session: AsyncSession, organization_id: uuid.UUID, key: str
) -> uuid.UUID | None:
    """The interaction the message (its Message-ID or content digest) was captured as."""
    found: uuid.UUID | None = await session.scalar(
        select(interactions.c.id).where(
            interactions.c.organization_id == organization_id,
            interactions.c.message_id == key,
        )
    )
    return found
