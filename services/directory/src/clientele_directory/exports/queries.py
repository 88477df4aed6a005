"""SQL of exports: the organizations to export, in name order, read in batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, cast, func, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.blocking import organization_blocked_expr
from clientele_directory.tables import organizations

BATCH = 1000


def organizations_statement(
    conditions: Sequence[ColumnElement[bool]], collation: str | None
) -> Select[Any]:
    """The organizations matching ``conditions``, by name, read ``BATCH`` rows at a time."""
    name = organizations.c.legal_name
    ordered = name.collate(collation) if collation else name
    return (
        select(organizations, organization_blocked_expr().label("blocked"))
        .where(*conditions)
        .order_by(ordered, organizations.c.id)
        .execution_options(yield_per=BATCH)
    )


async def first_holding(
    session: AsyncSession,
    conditions: Sequence[ColumnElement[bool]],
    fields: Sequence[str],
    pattern: str,
) -> tuple[str, str] | None:
    """``(legal name, the matched text)`` of one organization matching ``conditions`` whose
    ``fields`` hold a match of the regular expression ``pattern`` (None when none does)."""
    text = func.concat_ws(" ", *(cast(organizations.c[field], Text) for field in fields))
    found = (
        await session.execute(
            select(organizations.c.legal_name, func.substring(text, pattern))
            .where(*conditions, text.op("~")(pattern))
            .limit(1)
        )
    ).first()
    return None if found is None else (found[0], found[1])


async def batches(session: AsyncSession, stmt: Select[Any]) -> AsyncIterator[Sequence[Row[Any]]]:
    """The statement's rows through a server-side cursor, ``BATCH`` at a time."""
    result = await session.stream(stmt)
    async for partition in result.partitions(BATCH):
        yield partition
