"""The client cards: the directory's organizations as interactions keeps them.

The cards follow the organization state topic (``CARDS``, ADR 18): a card the change events
never announced (a consumer that started late, a lost read model) is filled in from its state
record. The change events also keep the card's fields (an older version never overwrites a
newer one) and say what the directory did to a client: blocked or unblocked (the unwanted
register; new business is refused, see ``refuse_blocked``), deleted or restored (hidden from every
read, history kept, reminders cancelled and rescheduled), merged (its contact log, planned
contacts and read-model rows move to the survivor; its id stays an alias of the survivor's).
A change event about a card not known yet is counted (``clientele_state_gaps_total``) and logged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from clientele_shared.events.catalog import (
    ORGANIZATIONS,
    OrganizationCreated,
    OrganizationUpdated,
)
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.directory import (
    OrganizationBlocked,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationUnblocked,
)
from clientele_shared.events.state import ReadModel, gap
from pydantic import BaseModel
from sqlalchemy import and_, delete, exists, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from clientele_interactions.clients.rules import (
    ClientCard,
    card_changes,
    card_columns,
    card_from_created,
)
from clientele_interactions.clock import Clock
from clientele_interactions.log.queries import SERVICE_ACTOR, bump_summary, move_interactions
from clientele_interactions.log.schemas import Interaction
from clientele_interactions.publishing import Publisher
from clientele_interactions.tables import (
    client_campaigns,
    client_cards,
    client_deals,
    client_erp_documents,
    employments,
    interactions,
    unmatched_addresses,
)

CARDS = ReadModel(
    client_cards,
    lambda state: {**card_columns(state), "updated_at": datetime.now(UTC)},
    key="organization_id",
    sticky=frozenset({"merged_into"}),
)
"""The client cards as a read model of the organization state topic (a merge alias, once set,
is kept: the card may have been re-pointed to a later survivor since)."""
CARD_CHANGES = "client-cards"
CARD_STATES = "client-card-states"


class CardEvents:
    """Folds organization events into client cards (an older version never overwrites a newer
    one) and applies what deletion, restoration and merges mean for the contact log."""

    def __init__(self, outbox: Outbox, clock: Clock, reminder_lead: timedelta) -> None:
        self.outbox = outbox
        self.clock = clock
        self.lead = reminder_lead

    async def __call__(self, session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if isinstance(payload, OrganizationCreated):
            card = card_from_created(payload)
            await session.execute(
                insert(client_cards)
                .values(**card.model_dump())
                .on_conflict_do_nothing(index_elements=["organization_id"])
            )
        elif isinstance(payload, OrganizationUpdated):
            current = await self._versioned(
                session,
                payload.organization_id,
                payload.version,
                {**card_changes(payload), "blocked": payload.blocked},
            )
            if current is None:
                gap(self.outbox.service, CARD_CHANGES, ORGANIZATIONS, envelope)
        elif isinstance(payload, OrganizationDeleted | OrganizationRestored):
            deleted = isinstance(payload, OrganizationDeleted)
            if not await self._lock(session, payload.organization_id):
                gap(self.outbox.service, CARD_CHANGES, ORGANIZATIONS, envelope)
                return
            current = await self._versioned(
                session,
                payload.organization_id,
                payload.version,
                {"deleted": deleted, "blocked": payload.blocked},
            )
            # the card is at this event's version (from it or from the state record that came
            # first): its reminders follow; a later version's own event will see to them
            if current == payload.version:
                actor = envelope.actor or SERVICE_ACTOR
                await self._reminders(session, payload.organization_id, actor)
                await bump_summary(session, payload.organization_id)
        elif isinstance(payload, OrganizationBlocked | OrganizationUnblocked):
            blocked = await session.execute(
                update(client_cards)
                .where(client_cards.c.organization_id == payload.organization_id)
                .values(blocked=isinstance(payload, OrganizationBlocked), updated_at=func.now())
            )
            if not blocked.rowcount:  # type: ignore[attr-defined]  # a CursorResult for DML
                gap(self.outbox.service, CARD_CHANGES, ORGANIZATIONS, envelope)
        elif isinstance(payload, OrganizationMerged):
            await self._merge(session, envelope, payload)

    async def _lock(self, session: AsyncSession, organization_id: uuid.UUID) -> bool:
        """Lock the card FOR UPDATE: writers about the client (FOR KEY SHARE) finish first."""
        found = await session.scalar(
            select(client_cards.c.organization_id)
            .where(client_cards.c.organization_id == organization_id)
            .with_for_update()
        )
        return found is not None

    async def _versioned(
        self,
        session: AsyncSession,
        organization_id: uuid.UUID,
        version: int,
        values: dict[str, Any],
    ) -> int | None:
        """Apply an event's values unless the card is at its version or later already; the
        card's version then (None: no such card)."""
        await session.execute(
            update(client_cards)
            .where(
                client_cards.c.organization_id == organization_id,
                client_cards.c.version < version,
            )
            .values(**values, version=version, updated_at=func.now())
        )
        current: int | None = await session.scalar(
            select(client_cards.c.version).where(client_cards.c.organization_id == organization_id)
        )
        return current

    async def _reminders(
        self,
        session: AsyncSession,
        organization_id: uuid.UUID,
        actor: Actor,
        only: list[Interaction] | None = None,
    ) -> None:
        """Reminders of the client's planned contacts (``only`` these when given): cancelled
        while the client is deleted, scheduled again once it is restored or its contacts moved
        to a merge's survivor (the notifier replaces a reminder by its id)."""
        row = (
            await session.execute(
                select(client_cards).where(client_cards.c.organization_id == organization_id)
            )
        ).first()
        if row is None:
            return
        card = ClientCard.model_validate(row, from_attributes=True)
        if only is None:
            planned = [
                Interaction.model_validate(item, from_attributes=True)
                for item in (
                    await session.execute(
                        select(interactions).where(
                            interactions.c.organization_id == organization_id,
                            interactions.c.status == "planned",
                        )
                    )
                ).all()
            ]
        else:
            planned = [item for item in only if item.status == "planned"]
        publisher = Publisher(self.outbox, card.directions, actor)
        now = self.clock.now()
        for interaction in planned:
            envelope = (
                publisher.cancel_reminder(interaction)
                if row.deleted
                else publisher.reminder(
                    interaction,
                    lead=self.lead,
                    now=now,
                    client_name=card.short_name or card.legal_name,
                )
            )
            await self.outbox.add(session, envelope)

    async def _merge(
        self, session: AsyncSession, envelope: Envelope, payload: OrganizationMerged
    ) -> None:
        """The merged organization becomes an alias of the survivor: its card is deleted and
        points at the survivor (so do cards merged into it before), its interactions (with a new
        version and an audit entry each) and read-model rows move to the survivor."""
        survivor, merged = payload.survivor_id, payload.merged_id
        actor = envelope.actor or SERVICE_ACTOR
        if not await self._lock(session, merged):
            # its creation has not arrived yet (another partition): a tombstone keeps the alias
            await session.execute(
                insert(client_cards)
                .values(
                    organization_id=merged,
                    legal_name="",
                    status="merged",
                    directions=[],
                    version=payload.merged_version,
                    deleted=True,
                    merged_into=survivor,
                )
                .on_conflict_do_nothing(index_elements=["organization_id"])
            )
        await session.execute(
            update(client_cards)
            .where(client_cards.c.organization_id == merged)
            .values(
                deleted=True,
                merged_into=survivor,
                version=func.greatest(client_cards.c.version, payload.merged_version),
                updated_at=func.now(),
            )
        )
        await session.execute(
            update(client_cards)
            .where(client_cards.c.merged_into == merged)
            .values(merged_into=survivor, updated_at=func.now())
        )
        await session.execute(
            update(client_cards)
            .where(client_cards.c.organization_id == survivor)
            .values(blocked=payload.blocked, updated_at=func.now())
        )
        # one Message-ID is captured once per client: the survivor's record of a message both
        # had captured stays the one the dedup finds
        twin = aliased(interactions)
        await session.execute(
            update(interactions)
            .where(
                interactions.c.organization_id == merged,
                interactions.c.message_id.is_not(None),
                exists().where(
                    and_(
                        twin.c.organization_id == survivor,
                        twin.c.message_id == interactions.c.message_id,
                    )
                ),
            )
            .values(message_id=None)
        )
        moved = await move_interactions(
            session,
            actor,
            where=interactions.c.organization_id == merged,
            values={"organization_id": survivor},
            action="client_merged",
            changes={"organization_id": {"old": str(merged), "new": str(survivor)}},
            note=f"the directory merged {merged} into {survivor}",
        )
        for table in (employments, client_deals, client_erp_documents):
            await session.execute(
                update(table)
                .where(table.c.organization_id == merged)
                .values(organization_id=survivor)
            )
        taken = [
            literal(survivor, client_campaigns.c.organization_id.type).label(column.name)
            if column.name == "organization_id"
            else column
            for column in client_campaigns.c
        ]
        await session.execute(
            insert(client_campaigns)
            .from_select(
                [c.name for c in client_campaigns.c],
                select(*taken).where(client_campaigns.c.organization_id == merged),
            )
            .on_conflict_do_nothing()
        )
        await session.execute(
            delete(client_campaigns).where(client_campaigns.c.organization_id == merged)
        )
        uncaptured = unmatched_addresses.c.candidates
        await session.execute(
            update(unmatched_addresses)
            .where(uncaptured.contains([merged]))
            .values(candidates=func.array_replace(uncaptured, merged, survivor))
        )
        await self._reminders(session, survivor, actor, only=moved)
        await bump_summary(session, merged)
        await bump_summary(session, survivor)
