"""The notifier's subscriptions: every service's notification topic, and the directory's
employees (whom an e-mail to an employee goes to)."""

from __future__ import annotations

import datetime as dt

from clientele_shared.events.catalog import EMPLOYEES, notification_requests
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.inbox import EventConsumer, Handler
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifications import (
    REQUESTERS,
    NotificationRequested,
    ReminderCancelled,
    ReminderScheduled,
)
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier import delivery
from clientele_notifier.employees import employees_handler
from clientele_notifier.livestream import InboxHub
from clientele_notifier.reminders import ReminderScheduler, apply_cancelled, apply_scheduled


def request_handler(
    requester: str, outbox: Outbox, scheduler: ReminderScheduler, hub: InboxHub
) -> Handler:
    """Applies one service's requests; the requester is the topic's owner, never the payload's
    say-so (only that service may publish on its topic)."""

    async def handle(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if isinstance(payload, NotificationRequested):
            accepted = await delivery.accept_request(
                session,
                outbox,
                requester=requester,
                request=payload,
                event_id=envelope.event_id,
                now=dt.datetime.now(dt.UTC),
            )
            hub.publish_after_commit(session, accepted.inbox)
        elif isinstance(payload, ReminderScheduled):
            if await apply_scheduled(session, requester, envelope, payload):
                scheduler.index(payload.reminder_id, payload.due_at)
        elif isinstance(payload, ReminderCancelled) and await apply_cancelled(
            session, requester, envelope, payload
        ):
            scheduler.index(payload.reminder_id, None)

    return handle


def subscribe(
    consumer: EventConsumer, outbox: Outbox, scheduler: ReminderScheduler, hub: InboxHub
) -> None:
    for requester in REQUESTERS:
        consumer.subscribe(
            notification_requests(requester),
            f"requests-{requester}",
            request_handler(requester, outbox, scheduler, hub),
        )
    consumer.subscribe(EMPLOYEES, "employees", employees_handler())
