"""SQL of the results feature."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.tables import interaction_results


async def results(
    session: AsyncSession, kind: str | None, include_inactive: bool
) -> list[Row[Any]]:
    stmt = select(interaction_results).order_by(
        interaction_results.c.kind, interaction_results.c.position, interaction_results.c.code
    )
    if kind is not None:
        stmt = stmt.where(interaction_results.c.kind == kind)
    if not include_inactive:
        stmt = stmt.where(interaction_results.c.active)
    return list((await session.execute(stmt)).all())


async def insert_result(session: AsyncSession, values: dict[str, Any]) -> Row[Any] | None:
    """The new result; None when the kind has that code already."""
    found: Row[Any] | None = (
        await session.execute(
            insert(interaction_results)
            .values(**values, version=1)
            .on_conflict_do_nothing()
            .returning(interaction_results)
        )
    ).first()
    return found


def _key(kind: str, code: str) -> tuple[Any, Any]:
    return (interaction_results.c.kind == kind, interaction_results.c.code == code)


async def locked_result(session: AsyncSession, kind: str, code: str) -> Row[Any] | None:
    query = select(interaction_results).where(*_key(kind, code)).with_for_update()
    found: Row[Any] | None = (await session.execute(query)).first()
    return found


async def update_result(
    session: AsyncSession, kind: str, code: str, values: dict[str, Any], version: int
) -> Row[Any]:
    updated: Row[Any] = (
        await session.execute(
            interaction_results.update()
            .where(*_key(kind, code))
            .values(**values, version=version, updated_at=func.now())
            .returning(interaction_results)
        )
    ).one()
    return updated
