"""SQL of the board: per-stage totals and one page of a column (ix_deals_board)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.board.rules import BoardFilter, DealCard
from clientele_pipeline.tables import deals, organizations


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def conditions(
    principal: Principal, pipeline_id: uuid.UUID, wanted: BoardFilter
) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [
        deals.c.pipeline_id == pipeline_id,
        deals.c.deleted_at.is_(None),
        ~deals.c.client_hidden,
        visible_to(principal, deals.c.directions),
    ]
    if wanted.responsible_employee_id is not None:
        where.append(deals.c.responsible_employee_id == wanted.responsible_employee_id)
    if wanted.tag is not None:
        where.append(deals.c.tags.contains([wanted.tag]))
    if wanted.direction is not None:
        where.append(deals.c.directions.contains([wanted.direction]))
    if wanted.amount_min is not None:
        where.append(deals.c.amount >= wanted.amount_min)
    if wanted.amount_max is not None:
        where.append(deals.c.amount <= wanted.amount_max)
    if wanted.close_from is not None:
        where.append(deals.c.expected_close_date >= wanted.close_from)
    if wanted.close_to is not None:
        where.append(deals.c.expected_close_date <= wanted.close_to)
    if wanted.q is not None:
        pattern = _like(wanted.q)
        named = select(organizations.c.organization_id).where(
            or_(
                organizations.c.legal_name.ilike(pattern),
                organizations.c.short_name.ilike(pattern),
            )
        )
        where.append(or_(deals.c.title.ilike(pattern), deals.c.organization_id.in_(named)))
    return where


async def totals(session: AsyncSession, where: list[ColumnElement[bool]]) -> list[dict[str, Any]]:
    """Count and sum of amounts per stage and currency."""
    rows = await session.execute(
        select(
            deals.c.stage_id,
            deals.c.currency,
            func.count().label("count"),
            func.sum(deals.c.amount).label("amount"),
        )
        .where(*where)
        .group_by(deals.c.stage_id, deals.c.currency)
    )
    return [dict(row) for row in rows.mappings()]


async def column_page(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    stage_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DealCard]:
    """Up to ``limit`` deals of one stage, newest first, after the cursor's deal."""
    conditions = [*where, deals.c.stage_id == stage_id]
    if after is not None:
        conditions.append(tuple_(deals.c.created_at, deals.c.id) < tuple_(*after))
    stmt = (
        select(
            *(deals.c[name] for name in DealCard.model_fields if name in deals.c),
            func.coalesce(organizations.c.short_name, organizations.c.legal_name).label(
                "organization_name"
            ),
        )
        .select_from(
            deals.outerjoin(
                organizations, organizations.c.organization_id == deals.c.organization_id
            )
        )
        .where(and_(*conditions))
        .order_by(deals.c.created_at.desc(), deals.c.id.desc())
        .limit(limit)
    )
    return [DealCard.model_validate(dict(row)) for row in (await session.execute(stmt)).mappings()]
