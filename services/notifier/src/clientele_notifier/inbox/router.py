"""HTTP of the caller's in-app inbox, with a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from clientele_notifier.inbox import service
from clientele_notifier.inbox.live import InboxHub
from clientele_notifier.inbox.rules import Notification

router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


@router.get("")
async def my_inbox(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Notification]:
    """Notifications addressed to the caller, newest first; nobody reads another's inbox."""
    return await service.my_inbox(runtime=runtime, principal=principal, unread=unread, limit=limit)


@router.get("/unread-count")
async def unread_count(principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, int]:
    return {"unread": await service.unread_count(runtime=runtime, principal=principal)}


@router.post("/{notification_id}/read")
async def mark_read(
    notification_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Notification:
    """Mark one of the caller's notifications read (idempotent); another's answers 404."""
    return await service.mark_read(
        runtime=runtime, principal=principal, notification_id=notification_id
    )


@router.post("/read-all")
async def mark_all_read(principal: CurrentPrincipal, runtime: CurrentRuntime) -> dict[str, int]:
    return {"marked": await service.mark_all_read(runtime=runtime, principal=principal)}


def _seconds_left(principal: Principal) -> float:
    """How long the caller's token stays valid (a stream ends when it expires)."""
    if principal.expires_at is None:
        return float("inf")
    return principal.expires_at - time.time()


def _sse(notification: dict[str, Any]) -> str:
    return f"id: {notification['id']}\nevent: notification\ndata: {json.dumps(notification)}\n\n"


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
    keepalive: Annotated[float, Query(ge=1, le=60)] = 15.0,
) -> StreamingResponse:
    """New notifications of the caller as Server-Sent Events (``event: notification``).

    A reconnecting client sends ``Last-Event-ID``; the notifications created after that one are
    sent first (in creation order, ties by id, the order they are published in), so nothing is
    missed between two connections.
    """
    hub: InboxHub = request.app.state.notifier.hub
    live = hub.attach(principal.subject)  # before reading the backlog: nothing falls between
    backlog = await service.backlog(
        runtime=runtime, principal=principal, last_event_id=last_event_id
    )

    async def events() -> AsyncIterator[str]:
        sent: set[str] = set()
        try:
            yield "retry: 3000\n: connected\n\n"
            for item in backlog:
                sent.add(item["id"])
                yield _sse(item)
            while not await request.is_disconnected():
                left = _seconds_left(principal)
                if left <= 0:
                    yield "event: expired\ndata: {}\n\n"  # reconnect with a fresh token
                    return
                try:
                    item = await asyncio.wait_for(live.get(), min(keepalive, left))
                except TimeoutError:
                    if not await service.still_active(runtime=runtime, principal=principal):
                        yield "event: revoked\ndata: {}\n\n"
                        return
                    yield ": keep-alive\n\n"
                    continue
                if item["id"] not in sent:
                    yield _sse(item)
        finally:
            hub.detach(principal.subject, live)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
