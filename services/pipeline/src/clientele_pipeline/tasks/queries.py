"""SQL of tasks and their feed tokens."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.tables import employees, task_feed_tokens, tasks
from clientele_pipeline.tasks.rules import Task

FEED_LIMIT = 5000


async def load(session: AsyncSession, task_id: uuid.UUID, *, lock: bool = False) -> Task | None:
    """A task (deleted ones too)."""
    stmt = select(tasks).where(tasks.c.id == task_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else Task.model_validate(dict(row))


async def insert_task(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(tasks).values(**values))


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    assignee_employee_id: uuid.UUID | None,
    deal_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
    status: str | None,
    overdue: bool | None,
    due_before: datetime | None,
    now: datetime,
    limit: int,
) -> list[Task]:
    """The caller's tasks by deadline, filtered."""
    stmt = select(tasks).where(
        tasks.c.deleted_at.is_(None), visible_to(principal, tasks.c.directions)
    )
    if assignee_employee_id is not None:
        stmt = stmt.where(tasks.c.assignee_employee_id == assignee_employee_id)
    if deal_id is not None:
        stmt = stmt.where(tasks.c.deal_id == deal_id)
    if organization_id is not None:
        stmt = stmt.where(tasks.c.organization_id == organization_id)
    if status is not None:
        stmt = stmt.where(tasks.c.status == status)
    if overdue is not None:
        late = (tasks.c.status == "open") & (tasks.c.deadline <= now)
        stmt = stmt.where(late if overdue else ~late)
    if due_before is not None:
        stmt = stmt.where(tasks.c.deadline < due_before)
    rows = (
        await session.execute(stmt.order_by(tasks.c.deadline, tasks.c.id).limit(limit))
    ).mappings()
    return [Task.model_validate(dict(row)) for row in rows]


async def open_tasks_of(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID
) -> list[Task]:
    """An employee's open tasks the principal sees, by deadline (a calendar feed's)."""
    rows = (
        await session.execute(
            select(tasks)
            .where(
                tasks.c.assignee_employee_id == employee_id,
                tasks.c.status == "open",
                tasks.c.deleted_at.is_(None),
                visible_to(principal, tasks.c.directions),
            )
            .order_by(tasks.c.deadline, tasks.c.id)
            .limit(FEED_LIMIT)
        )
    ).mappings()
    return [Task.model_validate(dict(row)) for row in rows]


async def handed_over_ids(
    session: AsyncSession, organization_id: uuid.UUID, employee_id: uuid.UUID
) -> list[uuid.UUID]:
    """The open tasks about a client assigned to an employee, locked in id order."""
    return list(
        (
            await session.scalars(
                select(tasks.c.id)
                .where(
                    tasks.c.organization_id == organization_id,
                    tasks.c.assignee_employee_id == employee_id,
                    tasks.c.status == "open",
                    tasks.c.deleted_at.is_(None),
                )
                .order_by(tasks.c.id)
                .with_for_update()
            )
        ).all()
    )


async def client_task_ids(session: AsyncSession, organization_id: uuid.UUID) -> list[uuid.UUID]:
    """Every task about a client (done and deleted ones too), locked in id order."""
    return list(
        (
            await session.scalars(
                select(tasks.c.id)
                .where(tasks.c.organization_id == organization_id)
                .order_by(tasks.c.id)
                .with_for_update()
            )
        ).all()
    )


async def claim_overdue(session: AsyncSession, now: datetime, batch: int) -> list[Task]:
    """Open tasks newly past their deadline, locked (``SKIP LOCKED``: replicas share them)."""
    rows = (
        await session.execute(
            select(tasks)
            .where(
                tasks.c.status == "open",
                tasks.c.overdue_at.is_(None),
                tasks.c.deleted_at.is_(None),
                tasks.c.deadline <= now,
            )
            .order_by(tasks.c.deadline, tasks.c.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        )
    ).mappings()
    return [Task.model_validate(dict(row)) for row in rows]


async def mark_overdue(session: AsyncSession, task_id: uuid.UUID, now: datetime) -> None:
    await session.execute(update(tasks).where(tasks.c.id == task_id).values(overdue_at=now))


# --- feed tokens ---------------------------------------------------------------------------


async def employee_login(
    session: AsyncSession, employee_id: uuid.UUID
) -> tuple[str, bool, list[str]] | None:
    """An employee's e-mail, whether active, and directions, from the read model."""
    row = (
        await session.execute(
            select(employees.c.email, employees.c.active, employees.c.directions).where(
                employees.c.employee_id == employee_id
            )
        )
    ).first()
    return None if row is None else (row.email, row.active, list(row.directions))


async def revoke_feed(session: AsyncSession, employee_id: uuid.UUID, by: str) -> uuid.UUID | None:
    revoked: uuid.UUID | None = await session.scalar(
        update(task_feed_tokens)
        .where(
            task_feed_tokens.c.employee_id == employee_id,
            task_feed_tokens.c.revoked_at.is_(None),
        )
        .values(revoked_at=func.now(), revoked_by=by)
        .returning(task_feed_tokens.c.id)
    )
    return revoked


async def insert_feed(
    session: AsyncSession, feed_id: uuid.UUID, employee_id: uuid.UUID, digest: str, by: str
) -> datetime:
    created: datetime | None = await session.scalar(
        insert(task_feed_tokens)
        .values(id=feed_id, employee_id=employee_id, secret_sha256=digest, created_by=by)
        .returning(task_feed_tokens.c.created_at)
    )
    assert created is not None
    return created


async def live_feed(
    session: AsyncSession, feed_id: uuid.UUID
) -> tuple[uuid.UUID, str, list[str]] | None:
    """A live feed's employee, secret digest and the employee's directions (active only)."""
    row = (
        await session.execute(
            select(
                task_feed_tokens.c.employee_id,
                task_feed_tokens.c.secret_sha256,
                employees.c.directions,
            )
            .join(employees, employees.c.employee_id == task_feed_tokens.c.employee_id)
            .where(
                task_feed_tokens.c.id == feed_id,
                task_feed_tokens.c.revoked_at.is_(None),
                employees.c.active,
            )
        )
    ).first()
    return None if row is None else (row.employee_id, row.secret_sha256, list(row.directions))
