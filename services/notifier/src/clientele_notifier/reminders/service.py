"""Reminder operations: apply the schedule and cancel events, read a reminder, fire due ones
(their deliveries and ``notifier.reminder.fired`` events in the firing transaction)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.notifications import (
    NotificationRequested,
    Recipient,
    ReminderCancelled,
    ReminderScheduled,
)
from clientele_shared.http.problems import NotFound
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork
from pydantic import ValidationError
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier import publishing
from clientele_notifier.deliveries import service as deliveries
from clientele_notifier.inbox.live import InboxHub
from clientele_notifier.reminders import queries
from clientele_notifier.reminders.rules import Reminder

log = get_logger(__name__)


async def apply_scheduled(
    session: AsyncSession, requester: str, envelope: Envelope, event: ReminderScheduled
) -> bool:
    """Upsert the reminder unless a newer event changed it or it has fired; True if changed."""
    return await queries.upsert(
        session,
        {
            "id": event.reminder_id,
            "requester": requester,
            "state": "scheduled",
            "due_at": event.due_at,
            "recipient": event.recipient.model_dump(mode="json", exclude_none=True),
            "channel": event.channel.value,
            "kind": event.kind,
            "subject": event.subject,
            "text": event.text,
            "payload": event.payload,
            "changed_by_event_at": envelope.occurred_at,
        },
    )


async def apply_cancelled(
    session: AsyncSession, requester: str, envelope: Envelope, event: ReminderCancelled
) -> bool:
    """Mark the reminder cancelled; an unknown one gets a tombstone so a late older schedule
    event does not bring it back. False when the cancel came too late (fired, or rescheduled by
    a newer event)."""
    return await queries.cancel(
        session,
        {
            "id": event.reminder_id,
            "requester": requester,
            "state": "cancelled",
            "due_at": envelope.occurred_at,
            "recipient": {},
            "channel": "inapp",
            "kind": "reminder",
            "subject": "",
            "payload": {},
            "changed_by_event_at": envelope.occurred_at,
        },
    )


async def get_reminder(
    *, runtime: ServiceRuntime, principal: Principal, reminder_id: uuid.UUID
) -> Reminder:
    """A reminder; a service sees only its own (404 for the others)."""
    async with runtime.sessions() as session:
        row = await queries.reminder(session, reminder_id)
    if row is None or (
        principal.kind == "service" and row.requester not in (principal.service, principal.subject)
    ):
        raise NotFound("No such reminder.")
    return Reminder.model_validate(row, from_attributes=True)


async def scheduled_after(
    *, runtime: ServiceRuntime, last: tuple[dt.datetime, uuid.UUID] | None, limit: int
) -> list[Row[Any]]:
    """A page of scheduled reminders (id, due time) after ``last``, for the index."""
    async with runtime.sessions() as session:
        return await queries.scheduled_after(session, last, limit)


async def overdue(*, runtime: ServiceRuntime, grace: dt.timedelta, limit: int) -> list[uuid.UUID]:
    async with runtime.sessions() as session:
        return await queries.overdue(session, grace, limit)


async def states(*, runtime: ServiceRuntime, ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """Id, due time and state of the given reminders PostgreSQL knows."""
    async with runtime.sessions() as session:
        return await queries.states(session, ids)


async def fire(
    *, runtime: ServiceRuntime, hub: InboxHub, ids: Sequence[uuid.UUID]
) -> list[Row[Any]]:
    """Claim the given reminders that are due and fire them once, in one transaction; the
    fired ones. Rows another transaction holds (a replica firing them, a consumer rescheduling
    them) are skipped."""
    async with deliveries.work(runtime) as uow:
        fired = await queries.claim_due(uow.session, ids)
        await _deliver(uow, hub, fired)
    return fired


async def _deliver(uow: UnitOfWork, hub: InboxHub, rows: Sequence[Row[Any]]) -> None:
    """The deliveries and ``notifier.reminder.fired`` events of fired reminders, with a
    few multi-row statements in the firing transaction."""
    if not rows:
        return
    requested: list[deliveries.NewRequest] = []
    events: list[Envelope] = []
    for row in rows:
        recipient = Recipient.model_validate(row.recipient)
        try:
            request = NotificationRequested(
                idempotency_key=f"reminder:{row.id}",
                channel=row.channel,
                kind=row.kind,
                recipients=[recipient],
                subject=row.subject,
                text=row.text or row.subject,
                template="reminder",
                data=row.payload,
            )
        except ValidationError as exc:  # the reminder still fires, with nobody to tell
            log.error(
                "a fired reminder has no deliverable recipient",
                reminder_id=str(row.id),
                error=str(exc)[:500],
            )
        else:
            requested.append(deliveries.NewRequest(row.requester, request))
        events.append(
            publishing.reminder_fired(
                uow.outbox,
                reminder_id=row.id,
                requester=row.requester,
                recipient=recipient.employee_id or recipient.email or recipient.endpoint or "",
                due_at=row.due_at,
                fired_at=row.fired_at,
            )
        )
    accepted = await deliveries.accept_requests(uow, requested, max(row.fired_at for row in rows))
    hub.publish_after_commit(uow.session, accepted.inbox)
    uow.stage(*events)
