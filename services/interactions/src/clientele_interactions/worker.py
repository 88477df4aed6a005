"""The overdue worker: planned contacts past their due time become overdue, once per due time.

For each one it records ``overdue_at``, writes the audit entry, emits
``interactions.interaction.overdue`` and asks the notifier to tell the responsible employee, all
in one transaction. Rows are claimed ``FOR UPDATE SKIP LOCKED``, so several replicas share the
work and never report one contact twice. The clock is injected: tests drive it.
"""

from __future__ import annotations

import asyncio

from clientele_shared.events.outbox import Outbox
from clientele_shared.observability import get_logger
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientele_interactions.clock import Clock
from clientele_interactions.domain.model import Interaction
from clientele_interactions.operations import SERVICE_ACTOR, audit, bump_summary, live_cards
from clientele_interactions.publishing import Publisher
from clientele_interactions.tables import client_cards, interactions

log = get_logger(__name__)


class OverdueWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        clock: Clock,
        *,
        batch: int = 500,
        interval: float = 15.0,
    ) -> None:
        self.sessions = sessions
        self.outbox = outbox
        self.clock = clock
        self.batch = batch
        self.interval = interval

    async def tick(self) -> int:
        """Mark one batch of newly overdue contacts; the number marked."""
        now = self.clock.now()
        async with self.sessions() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        interactions,
                        client_cards.c.directions.label("card_directions"),
                        client_cards.c.legal_name.label("card_legal_name"),
                        client_cards.c.short_name.label("card_short_name"),
                    )
                    .join(
                        client_cards,
                        client_cards.c.organization_id == interactions.c.organization_id,
                    )
                    .where(
                        interactions.c.status == "planned",
                        interactions.c.overdue_at.is_(None),
                        interactions.c.due_at <= now,
                        live_cards(),  # a deleted client's contacts wait for its restoration
                    )
                    .order_by(interactions.c.due_at, interactions.c.id)
                    .limit(self.batch)
                    .with_for_update(of=interactions, skip_locked=True)
                )
            ).all()
            for row in rows:
                interaction = Interaction.model_validate(row, from_attributes=True)
                await session.execute(
                    interactions.update()
                    .where(interactions.c.id == interaction.id)
                    .values(overdue_at=now)
                )
                await audit(
                    session,
                    SERVICE_ACTOR,
                    interaction_id=interaction.id,
                    action="overdue",
                    version=interaction.version,
                    changes={"overdue_at": {"old": None, "new": now.isoformat()}},
                )
                publisher = Publisher(self.outbox, row.card_directions, SERVICE_ACTOR)
                await self.outbox.add(session, publisher.overdue(interaction, now))
                notice = publisher.overdue_notice(
                    interaction, client_name=row.card_short_name or row.card_legal_name
                )
                if notice is not None:
                    await self.outbox.add(session, notice)
                await bump_summary(session, interaction.organization_id)
        if rows:
            log.info("planned contacts became overdue", count=len(rows))
        return len(rows)

    async def run(self) -> None:
        """Tick until cancelled: at once again after a full batch, else after ``interval``."""
        while True:
            try:
                marked = await self.tick()
            except Exception as exc:  # the next tick retries; the loop must not die
                log.error("overdue scan failed", error=repr(exc))
                marked = 0
            if marked < self.batch:
                await asyncio.sleep(self.interval)
