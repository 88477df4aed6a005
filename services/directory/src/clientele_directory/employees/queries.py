"""SQL of employees."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.tables import employees


async def is_active(session: AsyncSession, employee_id: uuid.UUID) -> bool:
    return bool(
        await session.scalar(select(employees.c.active).where(employees.c.id == employee_id))
    )
