"""Inbox operations: read one's notifications, mark them read, catch a live stream up."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import unit_of_work

from clientele_notifier.employees import service as employees
from clientele_notifier.inbox import queries
from clientele_notifier.inbox.rules import Notification

BACKLOG = 500
"""Notifications a reconnecting stream is sent at most before the live ones."""


async def my_inbox(
    *, runtime: ServiceRuntime, principal: Principal, unread: bool, limit: int
) -> list[Notification]:
    """Notifications addressed to the caller, newest first; nobody reads another's inbox."""
    async with runtime.sessions() as session:
        rows = await queries.inbox(session, principal.subject, unread=unread, limit=limit)
    return [Notification.model_validate(row, from_attributes=True) for row in rows]


async def unread_count(*, runtime: ServiceRuntime, principal: Principal) -> int:
    async with runtime.sessions() as session:
        return await queries.unread_count(session, principal.subject)


async def mark_read(
    *, runtime: ServiceRuntime, principal: Principal, notification_id: uuid.UUID
) -> Notification:
    """Mark one of the caller's notifications read (idempotent); another's answers 404."""
    async with unit_of_work(runtime.sessions, runtime.outbox, None, principal) as uow:
        row = await queries.mark_read(uow.session, principal.subject, notification_id)
    if row is None:
        raise NotFound("No such notification.")
    return Notification.model_validate(row, from_attributes=True)


async def mark_all_read(*, runtime: ServiceRuntime, principal: Principal) -> int:
    async with unit_of_work(runtime.sessions, runtime.outbox, None, principal) as uow:
        return await queries.mark_all_read(uow.session, principal.subject)


async def backlog(
    *, runtime: ServiceRuntime, principal: Principal, last_event_id: str | None
) -> list[dict[str, Any]]:
    """What a stream reconnecting with ``Last-Event-ID`` missed: the caller's notifications
    created after that one, JSON-ready (none for an id that is not one of theirs)."""
    if not last_event_id:
        return []
    try:
        last = uuid.UUID(last_event_id)
    except ValueError:
        return []
    async with runtime.sessions() as session:
        rows = await queries.created_after(session, principal.subject, last, BACKLOG)
    return [
        Notification.model_validate(row, from_attributes=True).model_dump(mode="json")
        for row in rows
    ]


async def still_active(*, runtime: ServiceRuntime, principal: Principal) -> bool:
    """False once the directory has deactivated the employee the stream belongs to."""
    async with runtime.sessions() as session:
        return await employees.is_active(session, principal.subject)
