"""Events in: every service's notification topic, and the directory's employees (whom an
e-mail to an employee goes to)."""

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
from clientele_shared.service_layer import within
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.deliveries import service as deliveries
from clientele_notifier.employees import service as employees
from clientele_notifier.inbox.live import InboxHub
from clientele_notifier.reminders import service as reminders
from clientele_notifier.reminders.scheduler import ReminderScheduler


def request_handler(
    requester: str, outbox: Outbox, scheduler: ReminderScheduler, hub: InboxHub
) -> Handler:
    """Applies one service's requests; the requester is the topic's owner, never the payload's
    say-so (only that service may publish on its topic)."""

    async def handle(session: AsyncSession, envelope: Envelope, payload: BaseModel) -> None:
        if isinstance(payload, NotificationRequested):
            async with within(session, outbox, None, deliveries.NOTIFIER_ACTOR) as uow:
                accepted = await deliveries.accept_request(
                    uow,
                    requester=requester,
                    request=payload,
                    event_id=envelope.event_id,
                    now=dt.datetime.now(dt.UTC),
                )
            hub.publish_after_commit(session, accepted.inbox)
        elif isinstance(payload, ReminderScheduled):
            if await reminders.apply_scheduled(session, requester, envelope, payload):
                scheduler.index(payload.reminder_id, payload.due_at)
        elif isinstance(payload, ReminderCancelled) and await reminders.apply_cancelled(
            session, requester, envelope, payload
        ):
            scheduler.index(payload.reminder_id, None)

    return handle


async def on_employee_event(session: AsyncSession, _: Envelope, payload: BaseModel) -> None:
    await employees.apply(session, payload)


def subscribe(
    consumer: EventConsumer, outbox: Outbox, scheduler: ReminderScheduler, hub: InboxHub
) -> None:
    for requester in REQUESTERS:
        consumer.subscribe(
            notification_requests(requester),
            f"requests-{requester}",
            request_handler(requester, outbox, scheduler, hub),
        )
    consumer.subscribe(EMPLOYEES, "employees", on_employee_event)
