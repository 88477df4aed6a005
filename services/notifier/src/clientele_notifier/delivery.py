"""Transactional steps of a delivery: accept a request, claim, finish, replay.

Every state change of a delivery, its attempt log row, its dead-letter record and the result
event for the requester (through the outbox) are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from clientele_shared.events.catalog import NOTIFIER
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    Recipient,
)
from clientele_shared.events.schemas.notifier import (
    DELIVERY_BOUNCED,
    DELIVERY_FAILED,
    DELIVERY_SUCCEEDED,
    DeliveryResult,
)
from pydantic import ValidationError
from sqlalchemy import (
    ColumnElement,
    Integer,
    Row,
    and_,
    any_,
    bindparam,
    case,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import Grouping

from clientele_notifier.domain import (
    ACTIVE_STATES,
    EMPLOYEE_ADDRESS,
    Content,
    DeliveryState,
    Preferences,
    UnknownTemplateError,
    digest_due,
    email_domain,
    recipient_address,
    render,
)
from clientele_notifier.store import (
    dead_letters,
    deliveries,
    delivery_attempts,
    employees,
    id_array,
    notifications,
    preferences,
    requests,
    text_array,
)

RESULT_EVENT = {
    DeliveryState.SENT: DELIVERY_SUCCEEDED,
    DeliveryState.DIGESTED: DELIVERY_SUCCEEDED,
    DeliveryState.BOUNCED: DELIVERY_BOUNCED,
    DeliveryState.DEAD: DELIVERY_FAILED,
    DeliveryState.SUPPRESSED: DELIVERY_FAILED,
}


async def load_preferences(
    session: AsyncSession, employee_ids: Sequence[str]
) -> dict[str, Preferences]:
    if not employee_ids:
        return {}
    rows = (
        await session.execute(
            select(preferences).where(
                preferences.c.employee_id == any_(text_array(sorted(set(employee_ids))))
            )
        )
    ).all()
    found: dict[str, Preferences] = {}
    for row in rows:
        try:
            found[row.employee_id] = Preferences(
                channels=row.channels,
                quiet_start=row.quiet_start,
                quiet_end=row.quiet_end,
                timezone=row.timezone,
                digest=row.digest,
            )
        except ValidationError:  # stored by an older rule: treat as no preferences
            found[row.employee_id] = Preferences()
    return found


INSERT_REQUESTS = (
    insert(requests)
    .on_conflict_do_nothing(constraint="uq_requests_idempotency")
    .returning(requests.c.id)
)
"""Requests not seen before (unique requester and idempotency key), built once."""


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
    session: AsyncSession,
    outbox: Outbox,
    *,
    requester: str,
    request: NotificationRequested,
    event_id: uuid.UUID | None,
    now: dt.datetime,
) -> Accepted:
    """Record one request (see accept_requests)."""
    return await accept_requests(session, outbox, [NewRequest(requester, request, event_id)], now)


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
            result_events(
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

    async def write(self, session: AsyncSession) -> None:
        if self.deliveries:
            await session.execute(insert(deliveries), self.deliveries)
        if self.attempts:
            await session.execute(insert(delivery_attempts), self.attempts)
        if self.dead_letters:
            await session.execute(insert(dead_letters), self.dead_letters)
        if self.inbox:
            await session.execute(insert(notifications), self.inbox)
        await self.outbox.add_many(session, self.events)


async def accept_requests(
    session: AsyncSession, outbox: Outbox, items: Sequence[NewRequest], now: dt.datetime
) -> Accepted:
    """Record requests and one delivery per distinct recipient of each, with one multi-row
    statement per table.

    The unique (requester, idempotency key) makes a request count once however often it
    arrives; the unique (request, recipient, channel) makes each recipient get one delivery.
    An in-app delivery is made here and now: the inbox row, the sent delivery, its log row and
    its result event are written in the caller's transaction (exactly once); e-mail and webhook
    deliveries wait for the worker. Preferences apply to recipients with an employee id, except
    on the notifier's own requests (digests).
    """
    if not items:
        return Accepted([])
    ids = [uuid.uuid4() for _ in items]
    created = set(
        (
            await session.scalars(
                INSERT_REQUESTS,
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
        ).all()
    )
    accepted = [(i, item) for i, item in zip(ids, items, strict=True) if i in created]
    prefs = await load_preferences(
        session,
        [r.employee_id for _, item in accepted for r in item.request.recipients if r.employee_id],
    )
    writes = _Writes(outbox, now)
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
    await writes.write(session)
    return Accepted(
        [i if i in created else None for i in ids],
        [
            {**n, "id": str(n["id"]), "created_at": now.isoformat(), "read_at": None}
            for n in sorted(writes.inbox, key=lambda n: str(n["id"]))
        ],
    )


def result_events(
    outbox: Outbox,
    state: DeliveryState,
    *,
    delivery_id: uuid.UUID,
    request_id: uuid.UUID,
    requester: str,
    idempotency_key: str,
    kind: str,
    channel: Channel,
    recipient: str,
    attempts: int,
    reason: str | None,
) -> list[Envelope]:
    """The result event for the requester of a delivery that reached ``state`` (none while it
    is still under way)."""
    event_type = RESULT_EVENT.get(state)
    if event_type is None:
        return []
    return [
        outbox.envelope(
            event_type,
            DeliveryResult(
                delivery_id=delivery_id,
                request_id=request_id,
                requester=requester,
                idempotency_key=idempotency_key,
                kind=kind,
                channel=channel,
                recipient=recipient,
                attempts=attempts,
                reason=reason,
            ),
            aggregate_id=str(request_id),
        )
    ]


async def claim(
    session: AsyncSession, batch: int, lease_seconds: float, channels: Sequence[Channel]
) -> list[Row[Any]]:
    """Claim due deliveries on ``channels`` for this worker (SKIP LOCKED: replicas never claim
    the same one). Two plain statements, lock then update, so no plan ever joins the table with
    itself. Each row carries its request and what the employees read model knows of its
    employee.

    The claim counts an attempt and moves next_attempt_at to the end of the lease: a worker that
    dies mid-send leaves the delivery to be claimed again when the lease ends.
    """
    due = list(
        (
            await session.scalars(
                select(deliveries.c.id)
                .where(
                    deliveries.c.state.in_([s.value for s in ACTIVE_STATES]),
                    deliveries.c.next_attempt_at <= func.clock_timestamp(),
                    deliveries.c.channel.in_([c.value for c in channels]),
                )
                .order_by(deliveries.c.next_attempt_at)
                .limit(batch)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    if not due:
        return []
    lease_end = func.clock_timestamp() + text(f"interval '{float(lease_seconds)} seconds'")
    claimed = (
        update(deliveries)
        .where(deliveries.c.id == any_(id_array(due)))
        .values(
            state=DeliveryState.SENDING.value,
            attempts=deliveries.c.attempts + 1,
            next_attempt_at=lease_end,
            lease_until=lease_end,
            updated_at=func.now(),
        )
        .returning(*deliveries.c)
        .cte("claimed")
    )
    stmt = (
        select(
            claimed,
            requests.c.requester,
            requests.c.idempotency_key,
            requests.c.kind,
            requests.c.content,
            requests.c.created_at.label("requested_at"),
            employees.c.email.label("employee_email"),
            employees.c.name.label("employee_name"),
            employees.c.active.label("employee_active"),
        )
        .join(requests, requests.c.id == claimed.c.request_id)
        .outerjoin(employees, employees.c.id == claimed.c.employee_id)
    )
    return list((await session.execute(stmt)).all())


def _still_claimed(rows: Sequence[Row[Any]]) -> ColumnElement[bool]:
    """The claims of ``rows`` are still ours: sending, at the attempt we claimed (each row's
    attempt is looked up by its id's position in the array of ids)."""
    ids = id_array(r.id for r in rows)
    attempts = bindparam(None, [r.attempts for r in rows], type_=ARRAY(Integer()))
    return and_(
        deliveries.c.id == any_(ids),
        deliveries.c.state == DeliveryState.SENDING.value,
        deliveries.c.attempts == Grouping(attempts)[func.array_position(ids, deliveries.c.id)],
    )


async def finish(
    session: AsyncSession,
    outbox: Outbox,
    row: Row[Any],
    state: DeliveryState,
    *,
    detail: str,
    duration_ms: float | None,
    next_attempt_at: dt.datetime | None = None,
) -> bool:
    """Record the outcome of the claimed attempt; False when the claim had been lost."""
    finished = await finish_many(
        session,
        outbox,
        [row],
        state,
        detail=detail,
        duration_ms=duration_ms,
        next_attempt_at=next_attempt_at,
    )
    return bool(finished)


async def finish_many(
    session: AsyncSession,
    outbox: Outbox,
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
    updated = set(
        (
            await session.scalars(
                update(deliveries)
                .where(_still_claimed(rows))
                .values(**values)
                .returning(deliveries.c.id)
            )
        ).all()
    )
    mine = [row for row in rows if row.id in updated]
    if not mine:
        return []
    await session.execute(
        insert(delivery_attempts),
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
        dead = insert(dead_letters)
        await session.execute(
            dead.on_conflict_do_update(
                index_elements=["delivery_id"],
                set_={
                    "reason": dead.excluded.reason,
                    "attempts": dead.excluded.attempts,
                    "created_at": func.now(),
                },
            ),
            [{"delivery_id": row.id, "reason": detail, "attempts": row.attempts} for row in mine],
        )
    events: list[Envelope] = []
    for row in mine:
        events.extend(
            result_events(
                outbox,
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
    await outbox.add_many(session, events)
    return mine


async def defer(session: AsyncSession, rows: Sequence[Row[Any]], until: dt.datetime) -> None:
    """Give claimed deliveries back without counting the attempt (the rate limit said wait)."""
    if not rows:
        return
    await session.execute(
        update(deliveries)
        .where(_still_claimed(rows))
        .values(
            state=case(
                (deliveries.c.attempts > 1, DeliveryState.RETRY.value),
                else_=DeliveryState.PENDING.value,
            ),
            attempts=deliveries.c.attempts - 1,
            next_attempt_at=until,
            lease_until=None,
        )
    )


async def replay(session: AsyncSession, delivery_id: uuid.UUID) -> bool:
    """Put a dead or bounced webhook delivery back in the queue with fresh attempts."""
    replayed = await session.scalar(
        update(deliveries)
        .where(
            deliveries.c.id == delivery_id,
            deliveries.c.channel == "webhook",
            deliveries.c.state.in_([DeliveryState.DEAD.value, DeliveryState.BOUNCED.value]),
        )
        .values(
            state=DeliveryState.RETRY.value,
            attempts=0,
            next_attempt_at=func.now(),
            updated_at=func.now(),
        )
        .returning(deliveries.c.id)
    )
    if replayed is None:
        return False
    await session.execute(dead_letters.delete().where(dead_letters.c.delivery_id == delivery_id))
    await session.execute(
        insert(delivery_attempts).values(
            delivery_id=delivery_id, attempt=0, outcome="replayed", detail="replay requested"
        )
    )
    return True


async def compile_digests(session: AsyncSession, outbox: Outbox, now: dt.datetime) -> int:
    """Send each due digest: the e-mails held for one employee and address become one e-mail
    (requester ``notifier``); the held deliveries become ``digested`` and report success."""
    groups = (
        await session.execute(
            select(
                deliveries.c.employee_id,
                deliveries.c.recipient,
                func.min(deliveries.c.created_at).label("oldest"),
            )
            .where(deliveries.c.state == DeliveryState.DIGEST.value)
            .group_by(deliveries.c.employee_id, deliveries.c.recipient)
            .limit(100)
        )
    ).all()
    prefs = await load_preferences(session, [g.employee_id for g in groups if g.employee_id])
    sent = 0
    for group in groups:
        choice = prefs.get(group.employee_id, Preferences()).digest
        if choice != "off" and not digest_due(choice, group.oldest, now):
            continue
        held = (
            await session.execute(
                select(deliveries, requests.c.requester, requests.c.content)
                .join(requests, requests.c.id == deliveries.c.request_id)
                .where(
                    deliveries.c.state == DeliveryState.DIGEST.value,
                    deliveries.c.employee_id == group.employee_id,
                    deliveries.c.recipient == group.recipient,
                )
                .order_by(deliveries.c.created_at)
                .with_for_update(of=deliveries, skip_locked=True)
            )
        ).all()
        if not held:
            continue
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
        await accept_request(
            session, outbox, requester=NOTIFIER, request=digest, event_id=None, now=now
        )
        await session.execute(
            update(deliveries)
            .where(deliveries.c.id == any_(id_array(row.id for row in held)))
            .values(state=DeliveryState.DIGESTED.value, sent_at=now, updated_at=now)
        )
        events: list[Envelope] = []
        for row, request in zip(held, requests_held, strict=True):
            events.extend(
                result_events(
                    outbox,
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
        await outbox.add_many(session, events)
        sent += 1
    return sent
