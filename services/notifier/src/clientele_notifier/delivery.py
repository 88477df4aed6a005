"""Transactional steps of a delivery: accept a request, claim, finish, replay.

Every state change of a delivery, its attempt log row, its dead-letter record and the result
event for the requester (through the outbox) are written in one transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from clientele_shared.events.catalog import NOTIFIER
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
from sqlalchemy import Row, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_notifier.domain import (
    ACTIVE_STATES,
    DeliveryState,
    Preferences,
    digest_due,
    email_domain,
    recipient_address,
)
from clientele_notifier.store import (
    dead_letters,
    deliveries,
    delivery_attempts,
    preferences,
    requests,
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
            select(preferences).where(preferences.c.employee_id.in_(sorted(set(employee_ids))))
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


async def accept_request(
    session: AsyncSession,
    outbox: Outbox,
    *,
    requester: str,
    request: NotificationRequested,
    event_id: uuid.UUID | None,
    now: dt.datetime,
) -> uuid.UUID | None:
    """Record a request and one delivery per distinct recipient; None for a repeated request.

    The unique (requester, idempotency key) makes a request count once however often it
    arrives; the unique (request, recipient, channel) makes each recipient get one delivery.
    """
    request_id = uuid.uuid4()
    created = await session.scalar(
        insert(requests)
        .values(
            id=request_id,
            requester=requester,
            idempotency_key=request.idempotency_key,
            event_id=event_id,
            kind=request.kind,
            channel=request.channel.value,
            content=request.model_dump(mode="json"),
        )
        .on_conflict_do_nothing(constraint="uq_requests_idempotency")
        .returning(requests.c.id)
    )
    if created is None:
        return None
    employee_ids = [r.employee_id for r in request.recipients if r.employee_id]
    prefs = await load_preferences(session, employee_ids)
    seen: set[str] = set()
    for recipient in request.recipients:
        address = recipient_address(request.channel, recipient)
        if address in seen:
            continue
        seen.add(address)
        state, first_attempt = DeliveryState.PENDING, now
        employee = recipient.employee_id
        if employee and employee in prefs:
            state, first_attempt = prefs[employee].plan(request.kind, request.channel, now)
        delivery_id = uuid.uuid4()
        await session.execute(
            insert(deliveries).values(
                id=delivery_id,
                request_id=request_id,
                channel=request.channel.value,
                recipient=address,
                recipient_domain=email_domain(address) if request.channel == "email" else None,
                employee_id=employee,
                state=state.value,
                next_attempt_at=first_attempt,
            )
        )
        if state is DeliveryState.SUPPRESSED:
            await session.execute(
                insert(delivery_attempts).values(
                    delivery_id=delivery_id,
                    attempt=0,
                    outcome="suppressed",
                    detail="excluded by the recipient's preferences",
                )
            )
            await publish_result(
                session,
                outbox,
                state,
                delivery_id=delivery_id,
                request_id=request_id,
                requester=requester,
                request=request,
                recipient=address,
                attempts=0,
                reason="excluded by the recipient's preferences",
            )
    return request_id


async def publish_result(
    session: AsyncSession,
    outbox: Outbox,
    state: DeliveryState,
    *,
    delivery_id: uuid.UUID,
    request_id: uuid.UUID,
    requester: str,
    request: NotificationRequested,
    recipient: str,
    attempts: int,
    reason: str | None,
) -> None:
    event_type = RESULT_EVENT.get(state)
    if event_type is None:
        return
    await outbox.publish(
        session,
        event_type,
        DeliveryResult(
            delivery_id=delivery_id,
            request_id=request_id,
            requester=requester,
            idempotency_key=request.idempotency_key,
            kind=request.kind,
            channel=request.channel,
            recipient=recipient,
            attempts=attempts,
            reason=reason,
        ),
        aggregate_id=str(request_id),
    )


async def claim(session: AsyncSession, batch: int, lease_seconds: float) -> list[Row[Any]]:
    """Claim due deliveries for this worker (SKIP LOCKED: replicas never claim the same one).

    The claim counts an attempt and moves next_attempt_at to the end of the lease: a worker that
    dies mid-send leaves the delivery to be claimed again when the lease ends.
    """
    due = (
        select(deliveries.c.id)
        .where(
            deliveries.c.state.in_([s.value for s in ACTIVE_STATES]),
            deliveries.c.next_attempt_at <= func.clock_timestamp(),
        )
        .order_by(deliveries.c.next_attempt_at)
        .limit(batch)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    lease_end = func.clock_timestamp() + text(f"interval '{float(lease_seconds)} seconds'")
    claimed = (
        update(deliveries)
        .where(deliveries.c.id.in_(due))
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
    stmt = select(
        claimed,
        requests.c.requester,
        requests.c.content,
        requests.c.created_at.label("requested_at"),
    ).join(requests, requests.c.id == claimed.c.request_id)
    return list((await session.execute(stmt)).all())


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
    values: dict[str, Any] = {"state": state.value, "updated_at": func.now(), "lease_until": None}
    if state is DeliveryState.SENT:
        values["sent_at"] = func.now()
        values["last_error"] = None
    else:
        values["last_error"] = detail[:4000]
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    updated = await session.scalar(
        update(deliveries)
        .where(
            deliveries.c.id == row.id,
            deliveries.c.state == DeliveryState.SENDING.value,
            deliveries.c.attempts == row.attempts,
        )
        .values(**values)
        .returning(deliveries.c.id)
    )
    if updated is None:
        return False
    await session.execute(
        insert(delivery_attempts).values(
            delivery_id=row.id,
            attempt=row.attempts,
            outcome=state.value,
            detail=detail[:4000],
            duration_ms=duration_ms,
        )
    )
    if state is DeliveryState.DEAD:
        await session.execute(
            insert(dead_letters)
            .values(delivery_id=row.id, reason=detail[:4000], attempts=row.attempts)
            .on_conflict_do_update(
                index_elements=["delivery_id"],
                set_={"reason": detail[:4000], "attempts": row.attempts, "created_at": func.now()},
            )
        )
    await publish_result(
        session,
        outbox,
        state,
        delivery_id=row.id,
        request_id=row.request_id,
        requester=row.requester,
        request=NotificationRequested.model_validate(row.content),
        recipient=row.recipient,
        attempts=row.attempts,
        reason=None if state is DeliveryState.SENT else detail,
    )
    return True


async def defer(session: AsyncSession, row: Row[Any], until: dt.datetime) -> None:
    """Give a claimed delivery back without counting the attempt (the rate limit said wait)."""
    await session.execute(
        update(deliveries)
        .where(
            deliveries.c.id == row.id,
            deliveries.c.state == DeliveryState.SENDING.value,
            deliveries.c.attempts == row.attempts,
        )
        .values(
            state=DeliveryState.RETRY.value if row.attempts > 1 else DeliveryState.PENDING.value,
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
            recipients=[Recipient(email=group.recipient)],
            subject=f"Your digest: {len(held)} notification(s)",
            text="\n".join(lines),
            template="digest",
        )
        await accept_request(
            session, outbox, requester=NOTIFIER, request=digest, event_id=None, now=now
        )
        for row, request in zip(held, requests_held, strict=True):
            await session.execute(
                update(deliveries)
                .where(deliveries.c.id == row.id)
                .values(state=DeliveryState.DIGESTED.value, sent_at=now, updated_at=now)
            )
            await publish_result(
                session,
                outbox,
                DeliveryState.DIGESTED,
                delivery_id=row.id,
                request_id=row.request_id,
                requester=row.requester,
                request=request,
                recipient=row.recipient,
                attempts=0,
                reason="sent in a digest",
            )
        sent += 1
    return sent
