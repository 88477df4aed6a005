"""SQL of marketing events and their stages."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import Select, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.campaigns.rules import Campaign, Stage
from clientele_campaigns.tables import campaign_stages, campaigns, event_kinds


async def load(
    session: AsyncSession, campaign_id: uuid.UUID, *, lock: bool = False
) -> Campaign | None:
    """A marketing event (deleted ones too) with its live stages in order."""
    found = await load_many(session, [campaign_id], lock=lock)
    return found[0] if found else None


async def load_many(
    session: AsyncSession, ids: list[uuid.UUID], *, lock: bool = False
) -> list[Campaign]:
    """Marketing events in the order of ``ids`` (missing ones left out), with their kind's
    names and their stages, in two statements."""
    stmt: Select[Any] = (
        select(
            campaigns,
            event_kinds.c.name_ru.label("kind_name_ru"),
            event_kinds.c.name_en.label("kind_name_en"),
        )
        .join(event_kinds, event_kinds.c.code == campaigns.c.kind)
        .where(campaigns.c.id.in_(ids))
    )
    if lock:
        stmt = stmt.with_for_update(of=campaigns)
    rows = {row["id"]: row for row in (await session.execute(stmt)).mappings()}
    stages: dict[uuid.UUID, list[Stage]] = defaultdict(list)
    for stage in (
        await session.execute(
            select(campaign_stages)
            .where(campaign_stages.c.campaign_id.in_(list(rows)), ~campaign_stages.c.deleted)
            .order_by(campaign_stages.c.campaign_id, campaign_stages.c.position)
        )
    ).mappings():
        stages[stage["campaign_id"]].append(Stage.model_validate(dict(stage)))
    return [
        Campaign.model_validate({**rows[campaign_id], "stages": stages[campaign_id]})
        for campaign_id in ids
        if campaign_id in rows
    ]


async def insert_campaign(session: AsyncSession, values: dict[str, Any], stages: list[str]) -> None:
    await session.execute(insert(campaigns).values(**values))
    await session.execute(
        insert(campaign_stages),
        [
            {"id": uuid.uuid4(), "campaign_id": values["id"], "position": position, "name": name}
            for position, name in enumerate(stages)
        ],
    )


async def list_visible(
    session: AsyncSession,
    principal: Principal,
    *,
    deleted: bool,
    status: str | None,
    starts_from: datetime | None,
    starts_before: datetime | None,
    limit: int,
) -> list[Campaign]:
    stmt = select(campaigns.c.id).where(
        visible_to(principal, campaigns.c.directions),
        campaigns.c.deleted_at.is_not(None) if deleted else campaigns.c.deleted_at.is_(None),
    )
    if status is not None:
        stmt = stmt.where(campaigns.c.status == status)
    if starts_from is not None:
        stmt = stmt.where(campaigns.c.planned_start >= starts_from)
    if starts_before is not None:
        stmt = stmt.where(campaigns.c.planned_start < starts_before)
    ids = (
        await session.scalars(
            stmt.order_by(campaigns.c.planned_start.desc(), campaigns.c.id).limit(limit)
        )
    ).all()
    return await load_many(session, list(ids))
