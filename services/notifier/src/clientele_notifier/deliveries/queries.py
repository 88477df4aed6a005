"""SQL of the deliveries feature: requests, deliveries, their attempt log and dead letters."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

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

from clientele_notifier.deliveries.rules import ACTIVE_STATES, DeliveryState
from clientele_notifier.tables import (
    dead_letters,
    deliveries,
    delivery_attempts,
    employees,
    id_array,
    notifications,
    requests,
)

INSERT_REQUESTS = (
    insert(requests)
    .on_conflict_do_nothing(constraint="uq_requests_idempotency")
    .returning(requests.c.id)
)
"""Requests not seen before (unique requester and idempotency key), built once."""

FAILED = (DeliveryState.DEAD.value, DeliveryState.BOUNCED.value)


async def insert_requests(session: AsyncSession, rows: list[dict[str, Any]]) -> set[uuid.UUID]:
    """Insert the requests not seen before; the ids of those inserted."""
    return set((await session.scalars(INSERT_REQUESTS, rows)).all())


async def insert_deliveries(
    session: AsyncSession,
    *,
    new: list[dict[str, Any]],
    attempts: list[dict[str, Any]],
    dead: list[dict[str, Any]],
    inbox: list[dict[str, Any]],
) -> None:
    """New deliveries, their first log rows and dead letters, and in-app notifications, with
    one multi-row statement per table."""
    if new:
        await session.execute(insert(deliveries), new)
    if attempts:
        await session.execute(insert(delivery_attempts), attempts)
    if dead:
        await session.execute(insert(dead_letters), dead)
    if inbox:
        await session.execute(insert(notifications), inbox)


async def claim(
    session: AsyncSession, batch: int, lease_seconds: float, channels: Sequence[str]
) -> list[Row[Any]]:
    """Claim due deliveries on ``channels`` (SKIP LOCKED: replicas never claim the same one).
    Two plain statements, lock then update, so no plan ever joins the table with itself. Each
    row carries its request and what the employees read model knows of its employee.

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
                    deliveries.c.channel.in_(channels),
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


async def finish_claims(
    session: AsyncSession, rows: Sequence[Row[Any]], values: dict[str, Any]
) -> set[uuid.UUID]:
    """Write ``values`` to the claimed deliveries whose claim is still ours; their ids."""
    updated = await session.scalars(
        update(deliveries).where(_still_claimed(rows)).values(**values).returning(deliveries.c.id)
    )
    return set(updated.all())


async def log_attempts(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
    await session.execute(insert(delivery_attempts), entries)


async def upsert_dead_letters(session: AsyncSession, entries: list[dict[str, Any]]) -> None:
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
        entries,
    )


async def defer(session: AsyncSession, rows: Sequence[Row[Any]], until: dt.datetime) -> None:
    """Give claimed deliveries back without counting the attempt."""
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
            deliveries.c.state.in_(FAILED),
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


async def failed_webhook_deliveries(session: AsyncSession, endpoint: str) -> list[uuid.UUID]:
    found = await session.scalars(
        select(deliveries.c.id).where(
            deliveries.c.channel == "webhook",
            deliveries.c.recipient == endpoint,
            deliveries.c.state.in_(FAILED),
        )
    )
    return list(found.all())


async def digest_groups(session: AsyncSession) -> list[Row[Any]]:
    """Held e-mails per employee and address, with the oldest one's time (100 groups)."""
    rows: Any = await session.execute(
        select(
            deliveries.c.employee_id,
            deliveries.c.recipient,
            func.min(deliveries.c.created_at).label("oldest"),
        )
        .where(deliveries.c.state == DeliveryState.DIGEST.value)
        .group_by(deliveries.c.employee_id, deliveries.c.recipient)
        .limit(100)
    )
    return list(rows.all())


async def held_for_digest(
    session: AsyncSession, employee_id: str | None, recipient: str
) -> list[Row[Any]]:
    """The held deliveries of one group with their requests, locked (SKIP LOCKED)."""
    rows = await session.execute(
        select(deliveries, requests.c.requester, requests.c.content)
        .join(requests, requests.c.id == deliveries.c.request_id)
        .where(
            deliveries.c.state == DeliveryState.DIGEST.value,
            deliveries.c.employee_id == employee_id,
            deliveries.c.recipient == recipient,
        )
        .order_by(deliveries.c.created_at)
        .with_for_update(of=deliveries, skip_locked=True)
    )
    return list(rows.all())


async def mark_digested(
    session: AsyncSession, delivery_ids: list[uuid.UUID], now: dt.datetime
) -> None:
    await session.execute(
        update(deliveries)
        .where(deliveries.c.id == any_(id_array(delivery_ids)))
        .values(state=DeliveryState.DIGESTED.value, sent_at=now, updated_at=now)
    )


# --- the delivery log ----------------------------------------------------------------------------

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


async def find_deliveries(
    session: AsyncSession,
    *,
    requester: str | None,
    idempotency_key: str | None,
    request_id: uuid.UUID | None,
    state: DeliveryState | None,
    limit: int,
) -> list[Row[Any]]:
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
    return list((await session.execute(stmt)).all())


async def delivery(session: AsyncSession, delivery_id: uuid.UUID) -> Row[Any] | None:
    query = _delivery_query().where(deliveries.c.id == delivery_id)
    found: Row[Any] | None = (await session.execute(query)).first()
    return found


async def attempts_of(session: AsyncSession, delivery_ids: list[uuid.UUID]) -> list[Row[Any]]:
    rows = await session.execute(
        select(delivery_attempts)
        .where(delivery_attempts.c.delivery_id.in_(delivery_ids))
        .order_by(delivery_attempts.c.id)
    )
    return list(rows.all())
