"""Interactions' subscriptions: the directory's organization events feed the client cards."""

from clientele_shared.events.catalog import (
    ORGANIZATIONS,
    OrganizationCreated,
    OrganizationUpdated,
)
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.inbox import EventConsumer
from pydantic import BaseModel
from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.domain.cards import card_changes, card_from_created
from clientele_interactions.store import client_cards


async def on_organization_event(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
    """Fold an organization event into its client card; older versions never overwrite newer."""
    if isinstance(payload, OrganizationCreated):
        card = card_from_created(payload)
        await session.execute(
            insert(client_cards)
            .values(**card.model_dump())
            .on_conflict_do_nothing(index_elements=["organization_id"])
        )
    elif isinstance(payload, OrganizationUpdated):
        await session.execute(
            update(client_cards)
            .where(
                client_cards.c.organization_id == payload.organization_id,
                client_cards.c.version < payload.version,
            )
            .values(**card_changes(payload), version=payload.version, updated_at=func.now())
        )


def subscribe(consumer: EventConsumer) -> None:
    consumer.subscribe(ORGANIZATIONS, "client-cards", on_organization_event)
