"""Notifier HTTP API: the caller's in-app inbox (with a live SSE stream), webhook endpoints
(admins), the delivery log and replays, and the caller's preferences."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.problems import NotFound, ProblemError
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from clientele_notifier import delivery
from clientele_notifier.channels.webhook import SecretBox, UnresolvableHostError, WebhookGuard
from clientele_notifier.domain import (
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    Notification,
    Preferences,
    Reminder,
    UrlRefusedError,
    WebhookEndpoint,
    WebhookEndpointDraft,
    WebhookEndpointPatch,
)
from clientele_notifier.livestream import InboxHub
from clientele_notifier.store import (
    dead_letters,
    deliveries,
    delivery_attempts,
    employees,
    notifications,
    preferences,
    reminders,
    requests,
    webhook_endpoints,
)

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
Operator = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SERVICE))]

inbox_router = APIRouter(prefix="/v1/inbox", tags=["inbox"])


@inbox_router.get("")
async def my_inbox(
    principal: CurrentPrincipal,
    runtime: Runtime,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[Notification]:
    """Notifications addressed to the caller, newest first; nobody reads another's inbox."""
    stmt = select(notifications).where(notifications.c.recipient == principal.subject)
    if unread:
        stmt = stmt.where(notifications.c.read_at.is_(None))
    stmt = stmt.order_by(notifications.c.created_at.desc(), notifications.c.id).limit(limit)
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [Notification.model_validate(row, from_attributes=True) for row in rows]


@inbox_router.get("/unread-count")
async def unread_count(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(notifications)
            .where(
                notifications.c.recipient == principal.subject, notifications.c.read_at.is_(None)
            )
        )
    return {"unread": int(count or 0)}


@inbox_router.post("/{notification_id}/read")
async def mark_read(
    notification_id: uuid.UUID, principal: CurrentPrincipal, runtime: Runtime
) -> Notification:
    """Mark one of the caller's notifications read (idempotent); another's answers 404."""
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            update(notifications)
            .where(
                notifications.c.id == notification_id,
                notifications.c.recipient == principal.subject,
                notifications.c.read_at.is_(None),
            )
            .values(read_at=func.now())
        )
        row = (
            await session.execute(
                select(notifications).where(
                    notifications.c.id == notification_id,
                    notifications.c.recipient == principal.subject,
                )
            )
        ).first()
    if row is None:
        raise NotFound("No such notification.")
    return Notification.model_validate(row, from_attributes=True)


@inbox_router.post("/read-all")
async def mark_all_read(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, int]:
    async with runtime.sessions() as session, session.begin():
        result = await session.execute(
            update(notifications)
            .where(
                notifications.c.recipient == principal.subject, notifications.c.read_at.is_(None)
            )
            .values(read_at=func.now())
        )
    return {"marked": int(result.rowcount)}  # type: ignore[attr-defined]


def _seconds_left(principal: Principal) -> float:
    """How long the caller's token stays valid (a stream ends when it expires)."""
    if principal.expires_at is None:
        return float("inf")
    return principal.expires_at - time.time()


async def _still_active(runtime: ServiceRuntime, principal: Principal) -> bool:
    """False once the directory has deactivated the employee the stream belongs to."""
    async with runtime.sessions() as session:
        active = await session.scalar(
            select(employees.c.active).where(employees.c.id == principal.subject)
        )
    return active is not False


def _sse(notification: dict[str, Any]) -> str:
    return f"id: {notification['id']}\nevent: notification\ndata: {json.dumps(notification)}\n\n"


@inbox_router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    principal: CurrentPrincipal,
    runtime: Runtime,
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
    backlog: list[dict[str, Any]] = []
    if last_event_id:
        try:
            last = uuid.UUID(last_event_id)
        except ValueError:
            last = None
        if last is not None:
            seen = (
                select(notifications.c.created_at, notifications.c.id)
                .where(notifications.c.id == last, notifications.c.recipient == principal.subject)
                .subquery()
            )
            async with runtime.sessions() as session:
                rows = (
                    await session.execute(
                        select(notifications)
                        .join(
                            seen,
                            tuple_(notifications.c.created_at, notifications.c.id)
                            > tuple_(seen.c.created_at, seen.c.id),
                        )
                        .where(notifications.c.recipient == principal.subject)
                        .order_by(notifications.c.created_at, notifications.c.id)
                        .limit(500)
                    )
                ).all()
            backlog = [
                Notification.model_validate(row, from_attributes=True).model_dump(mode="json")
                for row in rows
            ]

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
                    if not await _still_active(runtime, principal):
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


# --- webhook endpoints (admins) -----------------------------------------------------------------

webhooks_router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


def _secrets(request: Request) -> SecretBox:
    box: SecretBox = request.app.state.notifier.worker.secrets
    if not box.configured:
        raise ProblemError(
            503,
            "Webhooks Not Configured",
            "WEBHOOK_SECRETS_KEY is not set: endpoint secrets cannot be stored.",
            kind="webhooks-not-configured",
        )
    return box


Secrets = Annotated[SecretBox, Depends(_secrets)]


async def _vetted(request: Request, url: str) -> None:
    """Refuse (422) a URL the webhook guard would not call now: its scheme, or an address its
    host resolves to (loopback, private, link-local, metadata... unless allowed by settings)."""
    guard: WebhookGuard = request.app.state.notifier.worker.guard
    try:
        await guard.pin(url)
    except (UrlRefusedError, UnresolvableHostError) as exc:
        raise ProblemError(
            422,
            "Webhook URL Refused",
            f"The notifier does not call this URL: {exc}. Nothing was changed.",
            kind="webhook-url-refused",
            errors=[{"location": ["body", "url"], "message": str(exc), "type": "url_refused"}],
        ) from None


async def _endpoint(runtime: ServiceRuntime, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    async with runtime.sessions() as session:
        row = (
            await session.execute(
                select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
            )
        ).first()
    if row is None:
        raise NotFound("No such webhook endpoint.")
    return WebhookEndpoint.model_validate(row, from_attributes=True)


@webhooks_router.post("", status_code=status.HTTP_201_CREATED)
async def create_endpoint(
    draft: WebhookEndpointDraft,
    _: Admin,
    runtime: Runtime,
    secrets: Secrets,
    request: Request,
    response: Response,
) -> WebhookEndpoint:
    """Register a webhook endpoint; its secret is stored encrypted and never shown again. The
    URL must be https and reach a public address unless settings allow more (422 otherwise)."""
    await _vetted(request, draft.url)
    endpoint_id = uuid.uuid4()
    values = draft.model_dump(exclude={"secret"})
    try:
        async with runtime.sessions() as session, session.begin():
            await session.execute(
                insert(webhook_endpoints).values(
                    id=endpoint_id,
                    secret_encrypted=secrets.encrypt(draft.secret.get_secret_value()),
                    **values,
                )
            )
    except IntegrityError:
        raise ProblemError(
            409, "Conflict", f"An endpoint named {draft.name!r} exists.", kind="conflict"
        ) from None
    response.headers["Location"] = f"/v1/webhooks/{endpoint_id}"
    return await _endpoint(runtime, endpoint_id)


@webhooks_router.get("")
async def list_endpoints(_: Admin, runtime: Runtime) -> list[WebhookEndpoint]:
    async with runtime.sessions() as session:
        rows = (
            await session.execute(select(webhook_endpoints).order_by(webhook_endpoints.c.name))
        ).all()
    return [WebhookEndpoint.model_validate(row, from_attributes=True) for row in rows]


@webhooks_router.get("/{endpoint_id}")
async def get_endpoint(endpoint_id: uuid.UUID, _: Admin, runtime: Runtime) -> WebhookEndpoint:
    return await _endpoint(runtime, endpoint_id)


@webhooks_router.patch("/{endpoint_id}")
async def update_endpoint(
    endpoint_id: uuid.UUID,
    patch: WebhookEndpointPatch,
    _: Admin,
    runtime: Runtime,
    secrets: Secrets,
    request: Request,
) -> WebhookEndpoint:
    """Change an endpoint (a new secret rotates it; a new URL is vetted as on creation)."""
    if patch.url is not None:
        await _vetted(request, patch.url)
    values: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"secret"})
    if patch.secret is not None:
        values["secret_encrypted"] = secrets.encrypt(patch.secret.get_secret_value())
    async with runtime.sessions() as session, session.begin():
        found = await session.scalar(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint_id)
            .values(**values, updated_at=func.now())
            .returning(webhook_endpoints.c.id)
        )
    if found is None:
        raise NotFound("No such webhook endpoint.")
    return await _endpoint(runtime, endpoint_id)


@webhooks_router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_endpoint(endpoint_id: uuid.UUID, _: Admin, runtime: Runtime) -> None:
    async with runtime.sessions() as session, session.begin():
        found = await session.scalar(
            webhook_endpoints.delete()
            .where(webhook_endpoints.c.id == endpoint_id)
            .returning(webhook_endpoints.c.id)
        )
    if found is None:
        raise NotFound("No such webhook endpoint.")


@webhooks_router.post("/{endpoint_id}/replay")
async def replay_endpoint(endpoint_id: uuid.UUID, _: Admin, runtime: Runtime) -> dict[str, int]:
    """Send every failed (dead-lettered or refused) delivery to this endpoint again."""
    endpoint = await _endpoint(runtime, endpoint_id)
    async with runtime.sessions() as session, session.begin():
        failed = (
            await session.scalars(
                select(deliveries.c.id).where(
                    deliveries.c.channel == "webhook",
                    deliveries.c.recipient == endpoint.name,
                    deliveries.c.state.in_([DeliveryState.DEAD.value, DeliveryState.BOUNCED.value]),
                )
            )
        ).all()
        for delivery_id in failed:
            await delivery.replay(session, delivery_id)
    return {"replayed": len(failed)}


# --- the delivery log (admins and services) ----------------------------------------------------

deliveries_router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])

_DELIVERY_COLUMNS = (
    *deliveries.c,
    requests.c.requester,
    requests.c.idempotency_key,
    requests.c.kind,
    dead_letters.c.reason.label("dead_letter_reason"),
)


def _delivery_query() -> Any:
    return (
        select(*_DELIVERY_COLUMNS)
        .join(requests, requests.c.id == deliveries.c.request_id)
        .outerjoin(dead_letters, dead_letters.c.delivery_id == deliveries.c.id)
    )


async def _with_log(runtime: ServiceRuntime, rows: list[Any]) -> list[Delivery]:
    if not rows:
        return []
    async with runtime.sessions() as session:
        attempts = (
            await session.execute(
                select(delivery_attempts)
                .where(delivery_attempts.c.delivery_id.in_([r.id for r in rows]))
                .order_by(delivery_attempts.c.id)
            )
        ).all()
    log: dict[uuid.UUID, list[DeliveryAttempt]] = {}
    for attempt in attempts:
        log.setdefault(attempt.delivery_id, []).append(
            DeliveryAttempt.model_validate(attempt, from_attributes=True)
        )
    result = []
    for row in rows:
        item = Delivery.model_validate(row, from_attributes=True)
        item.log = log.get(row.id, [])
        if item.state in (DeliveryState.SENT, DeliveryState.DEAD, DeliveryState.BOUNCED):
            item.next_attempt_at = None
        result.append(item)
    return result


@deliveries_router.get("")
async def list_deliveries(
    principal: Operator,
    runtime: Runtime,
    requester: Annotated[str | None, Query(max_length=64)] = None,
    idempotency_key: Annotated[str | None, Query(max_length=200)] = None,
    request_id: uuid.UUID | None = None,
    state: DeliveryState | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[Delivery]:
    """The deliveries of a message (by requester and idempotency key, or request id) with the
    log of their attempts. A service sees only its own requests."""
    if principal.is_service:
        if requester is not None and requester != principal.service:
            raise NotFound("No such deliveries.")
        requester = principal.service or principal.subject
    stmt = _delivery_query()
    if requester is not None:
        stmt = stmt.where(requests.c.requester == requester)
    if idempotency_key is not None:
        stmt = stmt.where(requests.c.idempotency_key == idempotency_key)
    if request_id is not None:
        stmt = stmt.where(deliveries.c.request_id == request_id)
    if state is not None:
        stmt = stmt.where(deliveries.c.state == state.value)
    stmt = stmt.order_by(deliveries.c.created_at.desc(), deliveries.c.id).limit(limit)
    async with runtime.sessions() as session:
        rows = list((await session.execute(stmt)).all())
    return await _with_log(runtime, rows)


async def _one_delivery(
    runtime: ServiceRuntime, principal: Principal, delivery_id: uuid.UUID
) -> Delivery:
    async with runtime.sessions() as session:
        row = (
            await session.execute(_delivery_query().where(deliveries.c.id == delivery_id))
        ).first()
    if row is None or (
        principal.is_service and row.requester not in (principal.service, principal.subject)
    ):
        raise NotFound("No such delivery.")
    return (await _with_log(runtime, [row]))[0]


@deliveries_router.get("/{delivery_id}")
async def get_delivery(delivery_id: uuid.UUID, principal: Operator, runtime: Runtime) -> Delivery:
    return await _one_delivery(runtime, principal, delivery_id)


@deliveries_router.post("/{delivery_id}/replay")
async def replay_delivery(delivery_id: uuid.UUID, principal: Admin, runtime: Runtime) -> Delivery:
    """Send a failed webhook delivery again (fresh attempts); 409 for any other."""
    current = await _one_delivery(runtime, principal, delivery_id)
    async with runtime.sessions() as session, session.begin():
        replayed = await delivery.replay(session, delivery_id)
    if not replayed:
        raise ProblemError(
            409,
            "Conflict",
            f"Only failed webhook deliveries are replayed; this one is a {current.channel} "
            f"delivery in state {current.state}.",
            kind="conflict",
        )
    return await _one_delivery(runtime, principal, delivery_id)


# --- reminders (admins and services) -----------------------------------------------------------

reminders_router = APIRouter(prefix="/v1/reminders", tags=["reminders"])


@reminders_router.get("/{reminder_id}")
async def get_reminder(reminder_id: uuid.UUID, principal: Operator, runtime: Runtime) -> Reminder:
    async with runtime.sessions() as session:
        row = (
            await session.execute(select(reminders).where(reminders.c.id == reminder_id))
        ).first()
    if row is None or (
        principal.is_service and row.requester not in (principal.service, principal.subject)
    ):
        raise NotFound("No such reminder.")
    return Reminder.model_validate(row, from_attributes=True)


# --- preferences (each employee his own) -------------------------------------------------------

preferences_router = APIRouter(prefix="/v1/preferences", tags=["preferences"])


@preferences_router.get("/me")
async def my_preferences(principal: CurrentPrincipal, runtime: Runtime) -> Preferences:
    """The caller's preferences (every channel, no quiet hours, no digest until set)."""
    async with runtime.sessions() as session:
        found = await delivery.load_preferences(session, [principal.subject])
    return found.get(principal.subject, Preferences())


@preferences_router.put("/me")
async def set_my_preferences(
    prefs: Preferences, principal: CurrentPrincipal, runtime: Runtime
) -> Preferences:
    values = prefs.model_dump(mode="json")
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            insert(preferences)
            .values(employee_id=principal.subject, **values)
            .on_conflict_do_update(
                index_elements=["employee_id"], set_={**values, "updated_at": func.now()}
            )
        )
    return prefs


ROUTERS = [inbox_router, webhooks_router, deliveries_router, reminders_router, preferences_router]
