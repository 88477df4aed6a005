"""Delivery operations: accept requests (in-app ones delivered at once), claim due deliveries,
record each attempt's outcome, defer, replay, compile digests, read the delivery log.

Every state change of a delivery, its attempt log row, its dead-letter record and the result
event for the requester (staged in the unit of work's outbox) are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.events.catalog import NOTIFIER
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    Recipient,
)
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, unit_of_work
from sqlalchemy import Row, func

from clientele_notifier import publishing
from clientele_notifier.deliveries import queries
from clientele_notifier.deliveries.rules import (
    EMPLOYEE_ADDRESS,
    Content,
    Delivery,
    DeliveryAttempt,
    DeliveryState,
    UnknownTemplateError,
    email_domain,
    recipient_address,
    render,
)
from clientele_notifier.preferences import service as preferences
from clientele_notifier.preferences.rules import Preferences, digest_due

NOTIFIER_ACTOR = Actor(subject=NOTIFIER, kind="service")
"""The author of what the notifier does on its own (the worker, digests, reminders)."""


def work(
    runtime: ServiceRuntime, author: Principal | Actor = NOTIFIER_ACTOR
) -> AbstractAsyncContextManager[UnitOfWork]:
    """A unit of work of the notifier (it keeps no audit trail: the delivery log is its record)."""
    return unit_of_work(runtime.sessions, runtime.outbox, None, author)


@dataclass(frozen=True)
class NewRequest:
    """A request to record: who asked (the topic's owner), what, and the event that carried it."""

    requester: str
    request: NotificationRequested
    event_id: uuid.UUID | None = None


@dataclass
class Accepted:
    """What an acceptance recorded: per request its id (None for a repeated request), and the
    in-app notifications it stored (for the live streams, once the transaction commits)."""

    request_ids: list[uuid.UUID | None]
    inbox: list[dict[str, Any]] = field(default_factory=list)


async def accept_request(
    uow: UnitOfWork,
    *,
    requester: str,
    request: NotificationRequested,
    event_id: uuid.UUID | None,
    now: dt.datetime,
) -> Accepted:
    """Record one request (see accept_requests)."""
    return await accept_requests(uow, [NewRequest(requester, request, event_id)], now)


class _Writes:
    """The rows and events of one acceptance, written with one statement per table."""

    def __init__(self, outbox: Outbox, now: dt.datetime) -> None:
        self.outbox = outbox
        self.now = now
        self.deliveries: list[dict[str, Any]] = []
        self.attempts: list[dict[str, Any]] = []
        self.dead_letters: list[dict[str, Any]] = []
        self.inbox: list[dict[str, Any]] = []
        self.events: list[Envelope] = []

    def delivery(
        self,
        request_id: uuid.UUID,
        item: NewRequest,
        address: str,
        employee: str | None,
        state: DeliveryState,
        first_attempt: dt.datetime,
        *,
        reason: str | None = None,
        content: Content | None = None,
    ) -> None:
        """One delivery; one that ends at once (stored in the inbox, suppressed, dead) gets its
        log row, its dead letter and its result event too."""
        request = item.request
        delivery_id = uuid.uuid4()
        attempts = 1 if state is DeliveryState.SENT else 0
        self.deliveries.append(
            {
                "id": delivery_id,
                "request_id": request_id,
                "channel": request.channel.value,
                "recipient": address,
                "recipient_domain": email_domain(address)
                if request.channel is Channel.EMAIL and not address.startswith(EMPLOYEE_ADDRESS)
                else None,
                "employee_id": employee,
                "state": state.value,
                "attempts": attempts,
                "next_attempt_at": first_attempt,
                "sent_at": self.now if state is DeliveryState.SENT else None,
                "last_error": None if state is DeliveryState.SENT else reason,
            }
        )
        if state not in (DeliveryState.SENT, DeliveryState.SUPPRESSED, DeliveryState.DEAD):
            return
        self.attempts.append(
            {
                "delivery_id": delivery_id,
                "attempt": attempts,
                "outcome": state.value,
                "detail": reason,
                "duration_ms": None,
            }
        )
        if state is DeliveryState.DEAD:
            self.dead_letters.append(
                {"delivery_id": delivery_id, "reason": reason, "attempts": attempts}
            )
        if content is not None:
            self.inbox.append(
                {
                    "id": delivery_id,
                    "recipient": address,
                    "title": content.subject[:300],
                    "body": content.text,
                    "kind": request.kind,
                    "data": request.data,
                    "created_at": self.now,
                }
            )
        self.events.extend(
            publishing.result_events(
                self.outbox,
                state,
                delivery_id=delivery_id,
                request_id=request_id,
                requester=item.requester,
                idempotency_key=request.idempotency_key,
                kind=request.kind,
                channel=request.channel,
                recipient=address,
                attempts=attempts,
                reason=None if state is DeliveryState.SENT else reason,
            )
        )

    async def write(self, uow: UnitOfWork) -> None:
        await queries.insert_deliveries(
            uow.session,
            new=self.deliveries,
            attempts=self.attempts,
            dead=self.dead_letters,
            inbox=self.inbox,
        )
        uow.stage(*self.events)


async def accept_requests(
    uow: UnitOfWork, items: Sequence[NewRequest], now: dt.datetime
) -> Accepted:
    """Record requests and one delivery per distinct recipient of each, with one multi-row
    statement per table.

    The unique (requester, idempotency key) makes a request count once however often it
    arrives; the unique (request, recipient, channel) makes each recipient get one delivery.
    An in-app delivery is made here and now: the inbox row, the sent delivery, its log row and
    its result event are written in the caller's unit of work (exactly once); e-mail and webhook
    deliveries wait for the worker. Preferences apply to recipients with an employee id, except
    on the notifier's own requests (digests).
    """
    if not items:
        return Accepted([])
    ids = [uuid.uuid4() for _ in items]
    created = await queries.insert_requests(
        uow.session,
        [
            {
                "id": request_id,
                "requester": item.requester,
                "idempotency_key": item.request.idempotency_key,
                "event_id": item.event_id,
                "kind": item.request.kind,
                "channel": item.request.channel.value,
                "content": item.request.model_dump(mode="json"),
            }
            for request_id, item in zip(ids, items, strict=True)
        ],
    )
    accepted = [(i, item) for i, item in zip(ids, items, strict=True) if i in created]
    prefs = await preferences.load_preferences(
        uow.session,
        [r.employee_id for _, item in accepted for r in item.request.recipients if r.employee_id],
    )
    writes = _Writes(uow.outbox, now)
    for request_id, item in accepted:
        request = item.request
        content: Content | None = None
        failure: str | None = None
        if request.channel is Channel.INAPP:
            try:
                content = render(
                    request.subject, request.text, request.html, request.template, request.data
                )
            except UnknownTemplateError as exc:
                failure = str(exc)
        seen: set[str] = set()
        for recipient in request.recipients:
            address = recipient_address(request.channel, recipient)
            if address in seen:
                continue
            seen.add(address)
            state, first_attempt = DeliveryState.PENDING, now
            employee = recipient.employee_id
            digest = item.requester == NOTIFIER  # preferences made it: they do not apply
            if employee and employee in prefs and not digest:
                state, first_attempt = prefs[employee].plan(request.kind, request.channel, now)
            if state is DeliveryState.SUPPRESSED:
                reason = "excluded by the recipient's preferences"
                writes.delivery(request_id, item, address, employee, state, now, reason=reason)
            elif request.channel is not Channel.INAPP:
                writes.delivery(request_id, item, address, employee, state, first_attempt)
            elif content is None:
                writes.delivery(
                    request_id, item, address, employee, DeliveryState.DEAD, now, reason=failure
                )
            else:
                writes.delivery(
                    request_id,
                    item,
                    address,
                    employee,
                    DeliveryState.SENT,
                    now,
                    reason="stored in the inbox",
                    content=content,
                )
    await writes.write(uow)
    return Accepted(
        [i if i in created else None for i in ids],
        [
            {**n, "id": str(n["id"]), "created_at": now.isoformat(), "read_at": None}
            for n in sorted(writes.inbox, key=lambda n: str(n["id"]))
        ],
    )


async def claim_due(
    *, runtime: ServiceRuntime, batch: int, lease_seconds: float, channels: Sequence[Channel]
) -> list[Row[Any]]:
    """Claim due deliveries on ``channels`` for this worker (see queries.claim)."""
    async with work(runtime) as uow:
        return await queries.claim(
            uow.session, batch, lease_seconds, [channel.value for channel in channels]
        )


async def finish(
    *,
    runtime: ServiceRuntime,
    row: Row[Any],
    state: DeliveryState,
    detail: str,
    duration_ms: float | None,
    next_attempt_at: dt.datetime | None = None,
) -> bool:
    """Record the outcome of the claimed attempt; False when the claim had been lost."""
    async with work(runtime) as uow:
        finished = await finish_many(
            uow,
            [row],
            state,
            detail=detail,
            duration_ms=duration_ms,
            next_attempt_at=next_attempt_at,
        )
    return bool(finished)


async def finish_many(
    uow: UnitOfWork,
    rows: Sequence[Row[Any]],
    state: DeliveryState,
    *,
    detail: str,
    duration_ms: float | None,
    next_attempt_at: dt.datetime | None = None,
) -> list[Row[Any]]:
    """Record one outcome for several claimed attempts (state, attempt log, dead letter, result
    event); returns the rows whose claim was still ours."""
    if not rows:
        return []
    detail = detail[:4000]
    values: dict[str, Any] = {"state": state.value, "updated_at": func.now(), "lease_until": None}
    if state is DeliveryState.SENT:
        values["sent_at"] = func.now()
        values["last_error"] = None
    else:
        values["last_error"] = detail
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    updated = await queries.finish_claims(uow.session, rows, values)
    mine = [row for row in rows if row.id in updated]
    if not mine:
        return []
    await queries.log_attempts(
        uow.session,
        [
            {
                "delivery_id": row.id,
                "attempt": row.attempts,
                "outcome": state.value,
                "detail": detail,
                "duration_ms": duration_ms,
            }
            for row in mine
        ],
    )
    if state is DeliveryState.DEAD:
        await queries.upsert_dead_letters(
            uow.session,
            [{"delivery_id": row.id, "reason": detail, "attempts": row.attempts} for row in mine],
        )
    for row in mine:
        uow.stage(
            *publishing.result_events(
                uow.outbox,
                state,
                delivery_id=row.id,
                request_id=row.request_id,
                requester=row.requester,
                idempotency_key=row.idempotency_key,
                kind=row.kind,
                channel=Channel(row.channel),
                recipient=row.recipient,
                attempts=row.attempts,
                reason=None if state is DeliveryState.SENT else detail,
            )
        )
    return mine


async def defer(*, runtime: ServiceRuntime, rows: Sequence[Row[Any]], until: dt.datetime) -> None:
    """Give claimed deliveries back without counting the attempt (the rate limit said wait)."""
    if not rows:
        return
    async with work(runtime) as uow:
        await queries.defer(uow.session, rows, until)


async def replay_failed_to(uow: UnitOfWork, endpoint: str) -> int:
    """Put every dead or bounced delivery to a webhook endpoint back in the queue."""
    failed = await queries.failed_webhook_deliveries(uow.session, endpoint)
    for delivery_id in failed:
        await queries.replay(uow.session, delivery_id)
    return len(failed)


async def compile_digests(*, runtime: ServiceRuntime, now: dt.datetime) -> int:
    """Send each due digest: the e-mails held for one employee and address become one e-mail
    (requester ``notifier``); the held deliveries become ``digested`` and report success."""
    async with work(runtime) as uow:
        groups = await queries.digest_groups(uow.session)
        prefs = await preferences.load_preferences(
            uow.session, [g.employee_id for g in groups if g.employee_id]
        )
        sent = 0
        for group in groups:
            choice = prefs.get(group.employee_id, Preferences()).digest
            if choice != "off" and not digest_due(choice, group.oldest, now):
                continue
            held = await queries.held_for_digest(uow.session, group.employee_id, group.recipient)
            if not held:
                continue
            await _send_digest(uow, group, held, now)
            sent += 1
    return sent


async def _send_digest(
    uow: UnitOfWork, group: Row[Any], held: list[Row[Any]], now: dt.datetime
) -> None:
    requests_held = [NotificationRequested.model_validate(row.content) for row in held]
    lines = [f"- {r.subject}" + (f": {r.text}" if r.text else "") for r in requests_held]
    digest = NotificationRequested(
        idempotency_key=f"digest:{group.employee_id}:{held[0].id}",
        channel=Channel.EMAIL,
        kind="digest",
        recipients=[
            Recipient(employee_id=group.employee_id)
            if group.recipient.startswith(EMPLOYEE_ADDRESS)
            else Recipient(email=group.recipient, employee_id=group.employee_id)
        ],
        subject=f"Your digest: {len(held)} notification(s)",
        text="\n".join(lines),
        template="digest",
    )
    await accept_request(uow, requester=NOTIFIER, request=digest, event_id=None, now=now)
    await queries.mark_digested(uow.session, [row.id for row in held], now)
    for row, request in zip(held, requests_held, strict=True):
        uow.stage(
            *publishing.result_events(
                uow.outbox,
                DeliveryState.DIGESTED,
                delivery_id=row.id,
                request_id=row.request_id,
                requester=row.requester,
                idempotency_key=request.idempotency_key,
                kind=request.kind,
                channel=request.channel,
                recipient=row.recipient,
                attempts=0,
                reason="sent in a digest",
            )
        )


# --- the delivery log --------------------------------------------------------------------------


def _visible(principal: Principal, row: Row[Any] | None) -> Row[Any]:
    """A service sees only its own requests' deliveries (404 for the others)."""
    if row is None or (
        principal.kind == "service" and row.requester not in (principal.service, principal.subject)
    ):
        raise NotFound("No such delivery.")
    return row


async def _with_log(runtime: ServiceRuntime, rows: list[Row[Any]]) -> list[Delivery]:
    if not rows:
        return []
    async with runtime.sessions() as session:
        attempts = await queries.attempts_of(session, [r.id for r in rows])
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


async def list_deliveries(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    requester: str | None,
    idempotency_key: str | None,
    request_id: uuid.UUID | None,
    state: DeliveryState | None,
    limit: int,
) -> list[Delivery]:
    """The deliveries of a message (by requester and idempotency key, or request id) with the
    log of their attempts. A service sees only its own requests."""
    if principal.kind == "service":  # confined or not: its own requests only
        if requester is not None and requester != principal.service:
            raise NotFound("No such deliveries.")
        requester = principal.service or principal.subject
    async with runtime.sessions() as session:
        rows = await queries.find_deliveries(
            session,
            requester=requester,
            idempotency_key=idempotency_key,
            request_id=request_id,
            state=state,
            limit=limit,
        )
    return await _with_log(runtime, rows)


async def get_delivery(
    *, runtime: ServiceRuntime, principal: Principal, delivery_id: uuid.UUID
) -> Delivery:
    async with runtime.sessions() as session:
        row = _visible(principal, await queries.delivery(session, delivery_id))
    return (await _with_log(runtime, [row]))[0]


async def replay_delivery(
    *, runtime: ServiceRuntime, principal: Principal, delivery_id: uuid.UUID
) -> Delivery:
    """Send a failed webhook delivery again (fresh attempts); 409 for any other."""
    current = await get_delivery(runtime=runtime, principal=principal, delivery_id=delivery_id)
    async with work(runtime, principal) as uow:
        replayed = await queries.replay(uow.session, delivery_id)
    if not replayed:
        raise Conflict(
            f"Only failed webhook deliveries are replayed; this one is a {current.channel} "
            f"delivery in state {current.state}."
        )
    return await get_delivery(runtime=runtime, principal=principal, delivery_id=delivery_id)
