"""The deals read model fed by the pipeline's deal events: an event with the whole deal writes
the whole row, the others what they carry; an older version never overwrites a newer one."""

from __future__ import annotations

from typing import Any

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.pipeline import DealCreated, DealRestored
from clientele_shared.observability import get_logger
from pydantic import BaseModel
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.deals.rules import PartialDealEvent, deal_changes, deal_record
from clientele_campaigns.tables import deals

log = get_logger(__name__)


async def apply_deal_event(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
    """One deal event into the read model; a deal is opened when its creation event says."""
    if isinstance(payload, DealCreated | DealRestored):
        values = deal_record(payload)
        created = isinstance(payload, DealCreated)
        stmt = insert(deals).values(**values, opened_at=envelope.occurred_at if created else None)
        update_set: dict[str, Any] = {key: stmt.excluded[key] for key in values if key != "deal_id"}
        update_set["opened_at"] = func.coalesce(deals.c.opened_at, stmt.excluded.opened_at)
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=[deals.c.deal_id],
                set_=update_set,
                where=deals.c.version < stmt.excluded.version,
            )
        )
        return
    if not isinstance(payload, PartialDealEvent):
        return
    changed = await session.scalar(
        update(deals)
        .where(deals.c.deal_id == payload.deal_id, deals.c.version < payload.version)
        .values(**deal_changes(payload))
        .returning(deals.c.deal_id)
    )
    if changed is None:
        known = await session.scalar(
            select(deals.c.version).where(deals.c.deal_id == payload.deal_id)
        )
        if known is None:  # its creation predates this consumer: nothing to attribute
            log.warning("deal event for an unknown deal", deal_id=str(payload.deal_id))
