"""SQL of leads: the lead, its open namesakes, the direction's organizations, staff and turns."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import and_, bindparam, func, insert, or_, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.leads.rules import OPEN_STATUSES, SALES_ROLES, Lead, lead_of_row
from clientele_pipeline.tables import (
    employees,
    lead_external_ids,
    lead_round_robin,
    leads,
    organizations,
    pipelines,
)

_LOAD = select(leads).where(leads.c.id == bindparam("lead_id"))
_LOAD_LOCKED = _LOAD.with_for_update()


async def load(session: AsyncSession, lead_id: uuid.UUID, *, lock: bool = False) -> Lead | None:
    stmt = _LOAD_LOCKED if lock else _LOAD
    row = (await session.execute(stmt, {"lead_id": lead_id})).mappings().first()
    return None if row is None else lead_of_row(row)


_INSERT = insert(leads).returning(leads)


async def insert_lead(session: AsyncSession, values: dict[str, Any]) -> Lead:
    """The new lead as written (RETURNING: no second read)."""
    return lead_of_row((await session.execute(_INSERT, values)).mappings().one())


async def lead_of_external_id(
    session: AsyncSession, direction: str, source: str, external_id: str
) -> Lead | None:
    """The lead a source's id was taken for in the direction (its first request or a repeat)."""
    row = (
        (
            await session.execute(
                select(leads).join(
                    lead_external_ids,
                    (lead_external_ids.c.lead_id == leads.c.id)
                    & (lead_external_ids.c.direction == direction)
                    & (lead_external_ids.c.source == source)
                    & (lead_external_ids.c.external_id == external_id),
                )
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else lead_of_row(row)


async def claim_external_id(
    session: AsyncSession, direction: str, source: str, external_id: str, lead_id: uuid.UUID
) -> uuid.UUID:
    """Take a source's id for ``lead_id``; the lead that holds it (another one's when it was
    taken first: the insert waits for a concurrent one's transaction, then yields to it)."""
    claimed = await session.scalar(
        pg_insert(lead_external_ids)
        .values(direction=direction, source=source, external_id=external_id, lead_id=lead_id)
        .on_conflict_do_nothing()
        .returning(lead_external_ids.c.lead_id)
    )
    if claimed is not None:
        return lead_id
    owner = await session.scalar(
        select(lead_external_ids.c.lead_id).where(
            lead_external_ids.c.direction == direction,
            lead_external_ids.c.source == source,
            lead_external_ids.c.external_id == external_id,
        )
    )
    assert isinstance(owner, uuid.UUID)
    return owner


async def serialize_contacts(session: AsyncSession, direction: str, contacts: list[str]) -> None:
    """Take the transaction's advisory locks of the direction's contacts (sorted: no deadlock),
    so two requests from one e-mail or phone at once never both open a lead."""
    for contact in sorted(set(contacts)):
        await session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 69))"),
            {"key": f"lead:{direction}:{contact}"},
        )


async def open_lead_of(
    session: AsyncSession,
    direction: str,
    *,
    email: str | None,
    phone: str | None,
    since: datetime,
) -> Lead | None:
    """The direction's newest open lead from this e-mail or phone received since ``since``,
    locked."""
    same = []
    if email is not None:
        same.append(leads.c.email == email)
    if phone is not None:
        same.append(leads.c.phone == phone)
    if not same:
        return None
    row = (
        (
            await session.execute(
                select(leads)
                .where(
                    or_(*same),
                    leads.c.status.in_(OPEN_STATUSES),
                    leads.c.directions.contains([direction]),
                    leads.c.last_received_at >= since,
                    leads.c.deleted_at.is_(None),
                )
                .order_by(leads.c.last_received_at.desc())
                .limit(1)
                .with_for_update()
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else lead_of_row(row)


async def organization_by_inn(session: AsyncSession, direction: str, inn: str) -> uuid.UUID | None:
    """The live, unblocked organization of this INN the direction sees (the oldest id if
    several)."""
    return await session.scalar(
        select(organizations.c.organization_id)
        .where(
            organizations.c.inn == inn,
            organizations.c.directions.contains([direction]),
            ~organizations.c.blocked,
            ~organizations.c.deleted,
            organizations.c.merged_into.is_(None),
        )
        .order_by(organizations.c.organization_id)
        .limit(1)
    )


async def sales_staff(session: AsyncSession, direction: str) -> list[uuid.UUID]:
    """Active employees of the direction with a sales role, in a stable order (by id)."""
    rows = await session.scalars(
        select(employees.c.employee_id)
        .where(
            employees.c.active,
            employees.c.directions.contains([direction]),
            employees.c.roles.overlap(list(SALES_ROLES)),
        )
        .order_by(employees.c.employee_id)
    )
    return list(rows)


async def next_turn(session: AsyncSession, direction: str) -> int:
    """The direction's next round-robin turn (0, 1, 2, ...; its row locked until commit, so
    two replicas never hand out the same turn)."""
    stmt = pg_insert(lead_round_robin).values(direction=direction, turns=1)
    turns = await session.scalar(
        stmt.on_conflict_do_update(
            index_elements=[lead_round_robin.c.direction],
            set_={"turns": lead_round_robin.c.turns + 1},
        ).returning(lead_round_robin.c.turns)
    )
    return int(turns or 1) - 1


async def default_pipeline(session: AsyncSession, direction: str) -> uuid.UUID | None:
    """The direction's oldest live pipeline."""
    return await session.scalar(
        select(pipelines.c.id)
        .where(pipelines.c.directions.contains([direction]), pipelines.c.deleted_at.is_(None))
        .order_by(pipelines.c.created_at, pipelines.c.id)
        .limit(1)
    )


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    status: str | None,
    assignee_employee_id: uuid.UUID | None,
    unassigned: bool,
    direction: str | None,
    source: str | None,
    before: datetime | None,
    before_id: uuid.UUID | None,
    limit: int,
) -> list[Lead]:
    """The caller's leads, newest first, then by id (``before`` and ``before_id``: the page
    after that lead; ``before`` alone: after every lead received then)."""
    stmt = select(leads).where(
        visible_to(principal, leads.c.directions), leads.c.deleted_at.is_(None)
    )
    if status is not None:
        stmt = stmt.where(leads.c.status == status)
    if assignee_employee_id is not None:
        stmt = stmt.where(leads.c.assignee_employee_id == assignee_employee_id)
    if unassigned:
        stmt = stmt.where(leads.c.assignee_employee_id.is_(None))
    if direction is not None:
        stmt = stmt.where(leads.c.directions.contains([direction]))
    if source is not None:
        stmt = stmt.where(leads.c.source == source)
    if before is not None:
        earlier = leads.c.created_at < before
        if before_id is not None:  # leads received at the same instant, by id
            earlier = or_(earlier, and_(leads.c.created_at == before, leads.c.id > before_id))
        stmt = stmt.where(earlier)
    rows = (
        await session.execute(stmt.order_by(leads.c.created_at.desc(), leads.c.id).limit(limit))
    ).mappings()
    return [lead_of_row(row) for row in rows]


async def now(session: AsyncSession) -> datetime:
    """The transaction's time."""
    value = await session.scalar(select(func.now()))
    assert isinstance(value, datetime)
    return value
