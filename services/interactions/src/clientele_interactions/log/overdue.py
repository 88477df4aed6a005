"""The overdue worker: planned contacts past their due time become overdue, once per due time.

Each tick runs :func:`service.mark_overdue`: ``overdue_at``, the audit entry,
``interactions.interaction.overdue`` and the notice to the responsible employee, all in one
transaction. Rows are claimed ``FOR UPDATE SKIP LOCKED``, so several replicas share the work and
never report one contact twice. The clock is injected: tests drive it.
"""

from __future__ import annotations

import asyncio

from clientele_shared.events.outbox import Outbox
from clientele_shared.observability import get_logger
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from clientele_interactions.clock import Clock
from clientele_interactions.log import service

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
        marked = await service.mark_overdue(
            sessions=self.sessions, outbox=self.outbox, now=self.clock.now(), batch=self.batch
        )
        if marked:
            log.info("planned contacts became overdue", count=marked)
        return marked

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
