"""SQL of the address book, the meetings calendar and the feed tokens."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import Row, and_, exists, func, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.tables import (
    calendar_feed_tokens,
    client_cards,
    employees,
    employments,
    interactions,
    persons,
)
from clientele_interactions.visibility import visible_clients


async def persons_with_positions(
    session: AsyncSession, principal: Principal, today: date, organization_id: uuid.UUID | None
) -> list[Row[Any]]:
    """The persons visible to the caller (through their own directions or a position at a
    visible client), each with the first such position (``organization_id``: that client's)."""
    visible_job = and_(
        employments.c.person_id == persons.c.person_id,
        ~employments.c.deleted,
        or_(employments.c.until.is_(None), employments.c.until >= today),
        visible_clients(principal),
    )
    job_query = (
        select(client_cards.c.legal_name, client_cards.c.short_name, employments.c.position)
        .join(employments, employments.c.organization_id == client_cards.c.organization_id)
        .where(visible_job)
    )
    if organization_id is not None:
        job_query = job_query.where(employments.c.organization_id == organization_id)
    job = job_query.order_by(client_cards.c.legal_name).limit(1).lateral("job")
    at_client = exists(
        select(employments.c.employment_id)
        .join(client_cards, client_cards.c.organization_id == employments.c.organization_id)
        .where(visible_job)
    )
    stmt = (
        select(persons, job.c.legal_name, job.c.short_name, job.c.position)
        .outerjoin(job, true())
        .where(~persons.c.deleted)
        .order_by(persons.c.last_name, persons.c.first_name, persons.c.person_id)
    )
    if organization_id is not None:
        stmt = stmt.where(job.c.legal_name.is_not(None))
    else:
        stmt = stmt.where(or_(visible_to(principal, persons.c.directions), at_client))
    return list((await session.execute(stmt)).all())


async def planned_meetings(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID
) -> list[Row[Any]]:
    """The employee's planned meetings at clients visible to ``principal`` (5,000 at most)."""
    stmt = (
        select(interactions, client_cards.c.legal_name, client_cards.c.short_name)
        .join(client_cards, client_cards.c.organization_id == interactions.c.organization_id)
        .where(
            interactions.c.responsible_employee_id == employee_id,
            interactions.c.kind == "meeting",
            interactions.c.status == "planned",
            visible_clients(principal),
        )
        .order_by(interactions.c.due_at, interactions.c.id)
        .limit(5000)
    )
    return list((await session.execute(stmt)).all())


async def employee(session: AsyncSession, employee_id: uuid.UUID) -> Row[Any] | None:
    query = select(employees.c.email, employees.c.active).where(
        employees.c.employee_id == employee_id
    )
    result: Any = await session.execute(query)
    found: Row[Any] | None = result.first()
    return found


async def revoke_feed(
    session: AsyncSession, employee_id: uuid.UUID, revoked_by: str
) -> uuid.UUID | None:
    """Revoke the employee's live feed token; its id, None when there is none."""
    revoked: uuid.UUID | None = await session.scalar(
        update(calendar_feed_tokens)
        .where(
            calendar_feed_tokens.c.employee_id == employee_id,
            calendar_feed_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now(), revoked_by=revoked_by)
        .returning(calendar_feed_tokens.c.id)
    )
    return revoked


async def insert_feed(
    session: AsyncSession,
    *,
    feed_id: uuid.UUID,
    employee_id: uuid.UUID,
    secret_sha256: str,
    created_by: str,
) -> Any:
    """Store a new feed token; when it was created."""
    return await session.scalar(
        calendar_feed_tokens.insert()
        .values(
            id=feed_id,
            employee_id=employee_id,
            secret_sha256=secret_sha256,
            created_by=created_by,
        )
        .returning(calendar_feed_tokens.c.created_at)
    )


async def feeds_of(session: AsyncSession, employee_id: uuid.UUID) -> list[Row[Any]]:
    rows: Any = await session.execute(
        select(
            calendar_feed_tokens.c.id.label("feed_id"),
            calendar_feed_tokens.c.created_at,
            calendar_feed_tokens.c.created_by,
            calendar_feed_tokens.c.revoked_at,
            calendar_feed_tokens.c.revoked_by,
        )
        .where(calendar_feed_tokens.c.employee_id == employee_id)
        .order_by(calendar_feed_tokens.c.created_at.desc())
    )
    return list(rows.all())


async def live_feed(session: AsyncSession, feed_id: uuid.UUID) -> Row[Any] | None:
    """A live feed token of an active employee, with the employee's roles and directions."""
    query = (
        select(
            calendar_feed_tokens.c.employee_id,
            calendar_feed_tokens.c.secret_sha256,
            employees.c.roles,
            employees.c.directions,
        )
        .join(employees, employees.c.employee_id == calendar_feed_tokens.c.employee_id)
        .where(
            calendar_feed_tokens.c.id == feed_id,
            calendar_feed_tokens.c.revoked_at.is_(None),
            employees.c.active,
        )
    )
    result: Any = await session.execute(query)
    found: Row[Any] | None = result.first()
    return found
