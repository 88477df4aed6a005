"""SQL of deals and their stage history."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import and_, bindparam, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.deals.rules import Deal, DealFields, StageHistoryEntry
from clientele_pipeline.tables import deal_stage_history, deals


def storage_values(fields: DealFields) -> dict[str, Any]:
    """The deal's columns for its editable fields (JSON columns in their API shape)."""
    values = fields.model_dump(exclude={"products", "source"})
    values["products"] = [line.model_dump(mode="json") for line in fields.products]
    values["source"] = fields.source.model_dump(mode="json", exclude_none=True)
    return values


_LOAD = select(deals).where(deals.c.id == bindparam("deal_id"))
_LOAD_LOCKED = _LOAD.with_for_update()
_INSERT = insert(deals).returning(deals)
"""Statements built once: each keeps its cache key, so a request builds and hashes none."""


async def load(
    session: AsyncSession, deal_id: uuid.UUID, *, lock: bool = False
) -> tuple[Deal, bool] | None:
    """A deal (deleted ones too) and whether its client is hidden (deleted in the directory)."""
    stmt = _LOAD_LOCKED if lock else _LOAD
    row = (await session.execute(stmt, {"deal_id": deal_id})).mappings().first()
    if row is None:
        return None
    return Deal.model_validate(dict(row)), bool(row["client_hidden"])


async def insert_deal(session: AsyncSession, values: dict[str, Any]) -> Deal:
    """The new deal as written (RETURNING: no second read)."""
    row = (await session.execute(_INSERT, values)).mappings().one()
    return Deal.model_validate(dict(row))


def history_entry(
    *,
    deal: Deal,
    from_stage_id: uuid.UUID | None,
    to_stage_id: uuid.UUID,
    values: dict[str, Any],
) -> dict[str, Any]:
    """One row of the append-only stage history; a move also records when the deal had
    entered the stage it leaves (the previous entry's time, read by the insert itself)."""
    history = deal_stage_history
    entered = (
        select(history.c.moved_at)
        .where(history.c.deal_id == deal.id)
        .order_by(history.c.id.desc())
        .limit(1)
        .scalar_subquery()
        if from_stage_id is not None
        else None
    )
    return {
        "deal_id": deal.id,
        "pipeline_id": deal.pipeline_id,
        "from_stage_id": from_stage_id,
        "to_stage_id": to_stage_id,
        "from_entered_at": entered,
        **values,
    }


async def history(session: AsyncSession, deal_id: uuid.UUID) -> list[StageHistoryEntry]:
    rows = (
        await session.execute(
            select(deal_stage_history)
            .where(deal_stage_history.c.deal_id == deal_id)
            .order_by(deal_stage_history.c.id)
        )
    ).mappings()
    return [StageHistoryEntry.model_validate(dict(row)) for row in rows]


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    pipeline_id: uuid.UUID | None,
    organization_id: uuid.UUID | None,
    deleted: bool,
    limit: int,
) -> list[Deal]:
    stmt = select(deals).where(
        visible_to(principal, deals.c.directions),
        ~deals.c.client_hidden,
        deals.c.deleted_at.is_not(None) if deleted else deals.c.deleted_at.is_(None),
    )
    if pipeline_id is not None:
        stmt = stmt.where(deals.c.pipeline_id == pipeline_id)
    if organization_id is not None:
        stmt = stmt.where(deals.c.organization_id == organization_id)
    rows = (
        await session.execute(stmt.order_by(deals.c.created_at.desc(), deals.c.id).limit(limit))
    ).mappings()
    return [Deal.model_validate(dict(row)) for row in rows]


async def client_deal_ids(session: AsyncSession, organization_id: uuid.UUID) -> list[uuid.UUID]:
    """Every deal of a client (deleted ones too), locked, in id order (no deadlocks)."""
    return list(
        (
            await session.scalars(
                select(deals.c.id)
                .where(deals.c.organization_id == organization_id)
                .order_by(deals.c.id)
                .with_for_update()
            )
        ).all()
    )


async def open_deal_ids_about(
    session: AsyncSession,
    organization_id: uuid.UUID | None,
    person_id: uuid.UUID,
    directions: Sequence[str],
) -> list[uuid.UUID]:
    """The open, live deals of a client or with the person among their contacts that share a
    direction with ``directions``, in id order (the order they are locked in)."""
    about = deals.c.person_ids.contains([person_id])
    if organization_id is not None:
        about = or_(deals.c.organization_id == organization_id, about)
    return list(
        (
            await session.scalars(
                select(deals.c.id)
                .where(
                    about,
                    deals.c.status == "open",
                    deals.c.deleted_at.is_(None),
                    deals.c.directions.overlap(list(directions)),
                )
                .order_by(deals.c.id)
            )
        ).all()
    )


async def person_deal_ids(session: AsyncSession, person_id: uuid.UUID) -> list[uuid.UUID]:
    """Every deal (deleted ones too) with the person among its contacts, locked, in id order."""
    return list(
        (
            await session.scalars(
                select(deals.c.id)
                .where(deals.c.person_ids.contains([person_id]))
                .order_by(deals.c.id)
                .with_for_update()
            )
        ).all()
    )


async def flag_client(
    session: AsyncSession, organization_id: uuid.UUID, *, blocked: bool, hidden: bool
) -> None:
    """A blocked client's open deals are flagged (closed ones and an unblocked client's are
    not); all its deals are hidden while it is deleted in the directory. Rows already right are
    not written."""
    flagged = and_(literal(blocked), deals.c.status == "open")
    await session.execute(
        update(deals)
        .where(
            deals.c.organization_id == organization_id,
            or_(deals.c.client_hidden != hidden, deals.c.client_blocked != flagged),
        )
        .values(client_hidden=hidden, client_blocked=flagged)
    )
