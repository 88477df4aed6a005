"""Employee operations."""

from __future__ import annotations

import uuid

from clientele_shared.http.problems import invalid_field
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.employees import queries


async def check_responsible(session: AsyncSession, employee_id: uuid.UUID | None) -> None:
    """A responsible employee must be an active employee (422 otherwise)."""
    if employee_id is not None and not await queries.is_active(session, employee_id):
        raise invalid_field(
            "responsible_employee_id", "no such active employee", "unknown_reference"
        )
