"""SQL of the preferences feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, any_, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.tables import preferences, text_array


async def preferences_of(session: AsyncSession, employee_ids: Sequence[str]) -> list[Row[Any]]:
    rows = await session.execute(
        select(preferences).where(
            preferences.c.employee_id == any_(text_array(sorted(set(employee_ids))))
        )
    )
    return list(rows.all())


async def upsert_preferences(
    session: AsyncSession, employee_id: str, values: dict[str, Any]
) -> None:
    await session.execute(
        insert(preferences)
        .values(employee_id=employee_id, **values)
        .on_conflict_do_update(
            index_elements=["employee_id"], set_={**values, "updated_at": func.now()}
        )
    )
