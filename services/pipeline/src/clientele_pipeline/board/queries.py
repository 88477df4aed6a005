"""SQL of the board: per-stage totals and one page of a column (ix_deals_board)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import (
    ColumnElement,
    Select,
    Uuid,
    and_,
    any_,
    column,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.board.rules import BoardFilter, DealCard
from clientele_pipeline.tables import deals, organizations, stage_totals


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
        # = ANY(ARRAY(...)) rather than IN (...): an index condition, so a bitmap OR of the two
        # trigram look-ups, not a scan of every deal
        where.append(
            or_(
                deals.c.title.ilike(pattern),
                deals.c.organization_id == any_(func.array(named.scalar_subquery())),
            )
        )
    return where


async def totals(
    session: AsyncSession, where: list[ColumnElement[bool]], stage_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    """Count and sum of amounts per stage and currency, aggregated over the matching deals."""
    if stage_id is not None:
        where = [*where, deals.c.stage_id == stage_id]
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


async def stored_totals(
    session: AsyncSession,
    principal: Principal,
    pipeline_id: uuid.UUID,
    *,
    direction: str | None,
    stage_id: uuid.UUID | None,
) -> list[dict[str, Any]]:
    """The same figures from the trigger-kept ``stage_totals`` (no filter but directions)."""
    count = func.sum(stage_totals.c.deals)
    stmt = (
        select(
            stage_totals.c.stage_id,
            func.nullif(stage_totals.c.currency, "").label("currency"),
            count.label("count"),
            func.sum(stage_totals.c.amount).label("amount"),
        )
        .where(
            stage_totals.c.pipeline_id == pipeline_id,
            visible_to(principal, stage_totals.c.directions),
        )
        .group_by(stage_totals.c.stage_id, stage_totals.c.currency)
        .having(count > 0)
    )
    if direction is not None:
        stmt = stmt.where(stage_totals.c.directions.contains([direction]))
    if stage_id is not None:
        stmt = stmt.where(stage_totals.c.stage_id == stage_id)
    rows = [dict(row) for row in (await session.execute(stmt)).mappings()]
    for row in rows:
        if row["currency"] is None:
            row["amount"] = None
    return rows


def _cards(where: list[ColumnElement[bool]], limit: int) -> Select[Any]:
    """Up to ``limit`` deals newest first with their client's name (ix_deals_board)."""
    return (
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
        .where(and_(*where))
        .order_by(deals.c.created_at.desc(), deals.c.id.desc())
        .limit(limit)
    )


async def sparse_pages(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    stage_ids: list[uuid.UUID],
    limit: int,
) -> dict[uuid.UUID, list[DealCard]]:
    """The first page of every column when few deals match: the matching deals found once
    (through the filter's own index), ranked per stage, the client names joined to the kept
    ones. Never scans a column in board order for matches that may not be there."""
    fields = [deals.c[name] for name in DealCard.model_fields if name in deals.c]
    rank = func.row_number().over(
        partition_by=deals.c.stage_id, order_by=(deals.c.created_at.desc(), deals.c.id.desc())
    )
    ranked = (
        select(*fields, rank.label("rank"))
        .where(*where, deals.c.stage_id.in_(stage_ids))
        .subquery("ranked")
    )
    rows = (
        await session.execute(
            select(
                *(ranked.c[column.name] for column in fields),
                func.coalesce(organizations.c.short_name, organizations.c.legal_name).label(
                    "organization_name"
                ),
            )
            .select_from(
                ranked.outerjoin(
                    organizations, organizations.c.organization_id == ranked.c.organization_id
                )
            )
            .where(ranked.c.rank <= limit)
            .order_by(ranked.c.stage_id, ranked.c.rank)
        )
    ).mappings()
    pages: dict[uuid.UUID, list[DealCard]] = {stage_id: [] for stage_id in stage_ids}
    for row in rows:
        pages[row["stage_id"]].append(DealCard.model_validate(dict(row)))
    return pages


async def first_pages(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    stage_ids: list[uuid.UUID],
    limit: int,
) -> dict[uuid.UUID, list[DealCard]]:
    """The first page of every column in one statement (a LATERAL page per stage)."""
    ids = literal(stage_ids, ARRAY(Uuid))
    stage = func.unnest(ids).table_valued(column("stage_id", Uuid)).render_derived(name="stage")
    page = _cards([*where, deals.c.stage_id == stage.c.stage_id], limit).lateral("page")
    rows = (await session.execute(select(page).select_from(stage).join(page, true()))).mappings()
    pages: dict[uuid.UUID, list[DealCard]] = {stage_id: [] for stage_id in stage_ids}
    for row in rows:
        pages[row["stage_id"]].append(DealCard.model_validate(dict(row)))
    return pages


async def column_page(
    session: AsyncSession,
    where: list[ColumnElement[bool]],
    stage_id: uuid.UUID,
    *,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[DealCard]:
    """Up to ``limit`` deals of one stage after the cursor's deal."""
    conditions = [*where, deals.c.stage_id == stage_id]
    if after is not None:
        conditions.append(tuple_(deals.c.created_at, deals.c.id) < tuple_(*after))
    rows = (await session.execute(_cards(conditions, limit))).mappings()
    return [DealCard.model_validate(dict(row)) for row in rows]
