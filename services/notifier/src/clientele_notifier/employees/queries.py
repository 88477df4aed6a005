"""SQL of the employees read model."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.tables import employees


async def upsert(session: AsyncSession, employee_id: str, version: int, **fields: Any) -> None:
    """Write what an event tells of an employee unless the row is as new or newer."""
    stmt = insert(employees).values(id=employee_id, version=version, **fields)
    await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["id"],
            set_={**fields, "version": version, "updated_at": func.now()},
            where=employees.c.version < version,
        )
    )


async def active(session: AsyncSession, employee_id: str) -> bool | None:
    """Whether the employee is active; None for one the notifier has not heard of."""
    found: bool | None = await session.scalar(
        select(employees.c.active).where(employees.c.id == employee_id)
    )
    return found
