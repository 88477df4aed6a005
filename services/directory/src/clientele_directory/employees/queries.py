"""SQL of employees."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import ColumnElement, func, insert, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.employees.rules import Employee
from clientele_directory.tables import directions, employees
from clientele_directory.values import STORED


def subject_id(principal: Principal) -> uuid.UUID | None:
    """The employee id a principal's subject names, if it names one."""
    try:
        return uuid.UUID(principal.subject)
    except ValueError:
        return None


def employee_visible(principal: Principal) -> ColumnElement[bool]:
    """SQL: the employee row is visible to the principal (himself, or a shared direction)."""
    if principal.sees_all_directions:
        return true()
    return or_(
        employees.c.id == subject_id(principal),
        visible_to(principal, employees.c.directions),
    )


def to_employee(row: Any) -> Employee:
    data = dict(row._mapping)
    data["has_password"] = data.pop("password_hash", None) is not None
    for internal in ("password_changed_at", "created_by", "updated_by"):
        data.pop(internal, None)
    return Employee.model_validate(data, context=STORED)


async def is_active(session: AsyncSession, employee_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(select(employees.c.active).where(employees.c.id == employee_id))
    )


async def visible_employee(
    session: AsyncSession, principal: Principal, employee_id: uuid.UUID, *, lock: bool
) -> Employee | None:
    stmt = select(employees).where(employees.c.id == employee_id, employee_visible(principal))
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).first()
    return to_employee(row) if row is not None else None


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    direction: str | None,
    active: bool | None,
    limit: int,
) -> list[Employee]:
    stmt = (
        select(employees)
        .where(employee_visible(principal))
        .order_by(employees.c.name, employees.c.id)
        .limit(limit)
    )
    if active is not None:
        stmt = stmt.where(employees.c.active.is_(active))
    if direction is not None:
        stmt = stmt.where(employees.c.directions.any(direction))
    return [to_employee(row) for row in (await session.execute(stmt)).all()]


async def live_directions(session: AsyncSession, codes: list[str]) -> set[str]:
    """Which of the codes name directions that exist and are not archived."""
    return set(
        await session.scalars(
            select(directions.c.code).where(
                directions.c.code.in_(codes), directions.c.archived.is_(False)
            )
        )
    )


async def manager_of(session: AsyncSession, employee_id: uuid.UUID) -> Any:
    """``(id, manager_id)`` of an employee, if he exists."""
    return (
        await session.execute(
            select(employees.c.id, employees.c.manager_id).where(employees.c.id == employee_id)
        )
    ).first()


async def insert_employee(session: AsyncSession, values: dict[str, Any]) -> Employee:
    row = (await session.execute(insert(employees).values(**values).returning(employees))).one()
    return to_employee(row)


async def update_employee(
    session: AsyncSession, employee_id: uuid.UUID, values: dict[str, Any]
) -> Employee:
    row = (
        await session.execute(
            update(employees)
            .where(employees.c.id == employee_id)
            .values(**values)
            .returning(employees)
        )
    ).one()
    return to_employee(row)


async def password_hash(session: AsyncSession, employee_id: uuid.UUID) -> str | None:
    return await session.scalar(
        select(employees.c.password_hash).where(employees.c.id == employee_id)
    )


async def set_password_hash(
    session: AsyncSession, employee_id: uuid.UUID, new_hash: str, *, changed: bool = True
) -> None:
    values: dict[str, Any] = {"password_hash": new_hash}
    if changed:
        values["password_changed_at"] = func.now()
    await session.execute(update(employees).where(employees.c.id == employee_id).values(**values))


async def by_email(session: AsyncSession, email: str) -> Any:
    """The employee row (password hash included) with this e-mail, case aside."""
    return (
        await session.execute(
            select(employees).where(func.lower(employees.c.email) == email.strip().lower())
        )
    ).first()
