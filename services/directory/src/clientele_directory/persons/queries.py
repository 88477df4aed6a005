"""SQL of persons and their employments."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import COPY_FROM, Copy
from clientele_shared.service_layer import AuditEntry
from sqlalchemy import Select, and_, exists, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.blocking import person_blocked_expr
from clientele_directory.persons.rules import Employment, Person
from clientele_directory.tables import audit_log, employments, organizations, persons
from clientele_directory.values import STORED
from clientele_directory.visibility import (
    employment_orgs,
    live_employment_at_live_org,
    merged_into_visible,
    person_visible,
)


def person_select() -> Select[Any]:
    return select(persons, person_blocked_expr().label("blocked"))


def to_person(row: Any) -> Person:
    return Person.model_validate(row, from_attributes=True, context=STORED)


def to_employment(row: Any) -> Employment:
    return Employment.model_validate(row, from_attributes=True, context=STORED)


async def visible_employments(
    session: AsyncSession, principal: Principal, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[Employment]]:
    """The live employments at live organizations the principal sees, per person."""
    rows = (
        await session.execute(
            select(employments)
            .select_from(employment_orgs)
            .where(
                employments.c.person_id.in_(person_ids),
                live_employment_at_live_org,
                visible_to(principal, organizations.c.directions),
            )
            .order_by(employments.c.created_at, employments.c.id)
        )
    ).all()
    found: dict[uuid.UUID, list[Employment]] = {pid: [] for pid in person_ids}
    for row in rows:
        found[row.person_id].append(to_employment(row))
    return found


async def load_person(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    *,
    for_update: bool,
    deleted: bool | None,
    check_visible: bool,
) -> Person | None:
    """The person row if the principal sees it (without his employments)."""
    seen = person_visible(principal)
    if deleted is not False:
        seen = or_(seen, merged_into_visible(principal))
    stmt = person_select().where(persons.c.id == person_id, seen if check_visible else true())
    if deleted is not None:
        stmt = stmt.where(
            persons.c.deleted_at.is_not(None) if deleted else persons.c.deleted_at.is_(None)
        )
    if for_update:
        stmt = stmt.with_for_update(of=persons)
    row = (await session.execute(stmt)).first()
    return to_person(row) if row is not None else None


async def visible_survivor(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID
) -> uuid.UUID | None:
    """The live person the principal sees that this one was merged into, if any."""
    return await session.scalar(
        select(persons.c.merged_into).where(
            persons.c.id == person_id, merged_into_visible(principal)
        )
    )


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    organization_id: uuid.UUID | None,
    deleted: bool,
    limit: int,
) -> list[Person]:
    """Persons the principal may see, by name (without their employments)."""
    stmt = (
        person_select()
        .where(
            person_visible(principal),
            persons.c.deleted_at.is_not(None) if deleted else persons.c.deleted_at.is_(None),
        )
        .order_by(persons.c.last_name, persons.c.first_name, persons.c.id)
        .limit(limit)
    )
    if organization_id is not None:
        stmt = stmt.where(
            exists(
                select(1)
                .select_from(employment_orgs)
                .where(
                    employments.c.person_id == persons.c.id,
                    employments.c.organization_id == organization_id,
                    live_employment_at_live_org,
                    visible_to(principal, organizations.c.directions),
                )
            )
        )
    return [to_person(row) for row in (await session.execute(stmt)).all()]


async def insert_persons(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Write new persons in one statement (a COPY from ``COPY_FROM`` of them)."""
    if len(rows) >= COPY_FROM:
        await Copy.of(persons, rows).write(session)
    elif rows:
        await session.execute(insert(persons), rows)


async def insert_employments(session: AsyncSession, rows: list[dict[str, Any]]) -> list[Employment]:
    """Write new employments in one statement; them as written, in the rows' order."""
    if not rows:
        return []
    found = await session.execute(
        insert(employments).returning(employments, sort_by_parameter_order=True), rows
    )
    return [to_employment(row) for row in found.all()]


async def persons_by_id(
    session: AsyncSession, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, Person]:
    """The person rows (without their employments) by id, as they are now."""
    stmt = person_select().where(persons.c.id.in_(person_ids))
    return {p.id: p for p in map(to_person, (await session.execute(stmt)).all())}


async def effective_directions_of(
    session: AsyncSession, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Each person's own directions and those of the live organizations he works at."""
    found: dict[uuid.UUID, set[str]] = {pid: set() for pid in person_ids}
    own = await session.execute(
        select(persons.c.id, persons.c.directions).where(persons.c.id.in_(person_ids))
    )
    for person_id, directions in own.all():
        found[person_id].update(directions or [])
    through = await session.execute(
        select(employments.c.person_id, organizations.c.directions)
        .select_from(employment_orgs)
        .where(employments.c.person_id.in_(person_ids), live_employment_at_live_org)
    )
    for person_id, directions in through.all():
        found[person_id].update(directions or [])
    return {pid: sorted(directions) for pid, directions in found.items()}


async def organizations_directions(
    session: AsyncSession, org_ids: list[uuid.UUID], *, live: bool
) -> dict[uuid.UUID, list[str]]:
    """Organizations' directions by id (only live ones' with ``live``)."""
    stmt = select(organizations.c.id, organizations.c.directions).where(
        organizations.c.id.in_(org_ids)
    )
    if live:
        stmt = stmt.where(organizations.c.deleted_at.is_(None))
    return {org_id: list(d or []) for org_id, d in (await session.execute(stmt)).all()}


async def live_employment_counts(
    session: AsyncSession, person_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Each person's live employments at live organizations."""
    rows = await session.execute(
        select(employments.c.person_id, func.count())
        .select_from(employment_orgs)
        .where(employments.c.person_id.in_(person_ids), live_employment_at_live_org)
        .group_by(employments.c.person_id)
    )
    counts = dict.fromkeys(person_ids, 0)
    counts.update({pid: int(n) for pid, n in rows.all()})
    return counts


async def update_employment(
    session: AsyncSession, employment_id: uuid.UUID, values: dict[str, Any]
) -> Employment:
    row = (
        await session.execute(
            update(employments)
            .where(employments.c.id == employment_id)
            .values(**values)
            .returning(employments)
        )
    ).one()
    return to_employment(row)


async def visible_employment(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, employment_id: uuid.UUID
) -> Employment | None:
    """A live employment of the person at a live organization the principal sees, locked."""
    row = (
        await session.execute(
            select(employments)
            .select_from(employment_orgs)
            .where(
                employments.c.id == employment_id,
                employments.c.person_id == person_id,
                live_employment_at_live_org,
                visible_to(principal, organizations.c.directions),
            )
            .with_for_update(of=employments)
        )
    ).first()
    return to_employment(row) if row is not None else None


async def person_audit(
    session: AsyncSession,
    principal: Principal,
    person_id: uuid.UUID,
    *,
    kinds: tuple[str, str],
    after: int,
    limit: int,
) -> list[AuditEntry]:
    """The person's audit entries and those of his employments the principal may see."""
    person_kind, employment_kind = kinds
    visible_jobs = (
        select(employments.c.id)
        .select_from(employment_orgs)
        .where(
            employments.c.person_id == person_id,
            visible_to(principal, organizations.c.directions),
        )
    )
    rows = (
        await session.execute(
            select(audit_log)
            .where(
                or_(
                    and_(
                        audit_log.c.entity_kind == person_kind, audit_log.c.entity_id == person_id
                    ),
                    and_(
                        audit_log.c.entity_kind == employment_kind,
                        audit_log.c.entity_id.in_(visible_jobs),
                    ),
                ),
                audit_log.c.id > after,
            )
            .order_by(audit_log.c.id)
            .limit(limit)
        )
    ).all()
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]
