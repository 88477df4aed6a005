"""SQL of mailings and their recipients."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.bulk import COPY_FROM, Copy
from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.mailings.rules import Candidate, Mailing, PrintRun, Recipient
from clientele_campaigns.tables import (
    directory,
    mailing_keys,
    mailing_prints,
    mailing_recipients,
    mailings,
)


async def signing_key(session: AsyncSession) -> bytes:
    """The unsubscribe tokens' key: made once by whichever replica asks first."""
    await session.execute(
        upsert(mailing_keys)
        .values(id=1, key=secrets.token_hex(32))
        .on_conflict_do_nothing(index_elements=["id"])
    )
    return bytes.fromhex(
        await session.scalar(select(mailing_keys.c.key).where(mailing_keys.c.id == 1)) or ""
    )


async def insert_mailing(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(mailings).values(**values))


async def totals(session: AsyncSession, mailing_id: uuid.UUID) -> dict[str, int]:
    """Recipients per status, and the excluded per reason (``excluded:<reason>``)."""
    rows = await session.execute(
        select(mailing_recipients.c.status, mailing_recipients.c.reason, func.count())
        .where(mailing_recipients.c.mailing_id == mailing_id)
        .group_by(mailing_recipients.c.status, mailing_recipients.c.reason)
    )
    found: dict[str, int] = {}
    for status, reason, count in rows:
        found[status] = found.get(status, 0) + count
        if status in ("excluded", "failed") and reason:
            found[f"{status}:{reason}"] = count
    return found


async def load(
    session: AsyncSession, mailing_id: uuid.UUID, *, lock: bool = False, with_totals: bool = False
) -> Mailing | None:
    stmt = select(mailings).where(mailings.c.id == mailing_id)
    if lock:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    if row is None:
        return None
    counted = await totals(session, mailing_id) if with_totals else {}
    printed = await print_run(session, mailing_id) if with_totals else None
    return Mailing.model_validate({**row, "totals": counted, "printed": printed})


async def print_run(session: AsyncSession, mailing_id: uuid.UUID) -> PrintRun | None:
    row = (
        (
            await session.execute(
                select(mailing_prints).where(mailing_prints.c.mailing_id == mailing_id)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else PrintRun.model_validate(row)


async def insert_print_run(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(mailing_prints).values(**values))


async def list_visible(
    session: AsyncSession, principal: Principal, status: str | None, limit: int
) -> list[Mailing]:
    stmt = select(mailings).where(visible_to(principal, mailings.c.directions))
    if status is not None:
        stmt = stmt.where(mailings.c.status == status)
    rows = await session.execute(
        stmt.order_by(mailings.c.created_at.desc(), mailings.c.id).limit(limit)
    )
    return [Mailing.model_validate(row) for row in rows.mappings()]


async def set_status(session: AsyncSession, mailing_id: uuid.UUID, values: dict[str, Any]) -> None:
    await session.execute(update(mailings).where(mailings.c.id == mailing_id).values(**values))


async def due(session: AsyncSession) -> Mailing | None:
    """The mailing longest due to start, locked (one replica prepares it; others skip it)."""
    row = (
        (
            await session.execute(
                select(mailings)
                .where(mailings.c.status == "scheduled", mailings.c.scheduled_at <= func.now())
                .order_by(mailings.c.scheduled_at)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else Mailing.model_validate(row)


async def sending(session: AsyncSession, channel: str) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(mailings.c.id)
        .where(mailings.c.status == "sending", mailings.c.channel == channel)
        .order_by(mailings.c.prepared_at)
    )
    return list(rows)


async def lock_if_sending(session: AsyncSession, mailing_id: uuid.UUID) -> Mailing | None:
    """The mailing while it is sending, locked for this replica alone (others skip it)."""
    row = (
        (
            await session.execute(
                select(mailings)
                .where(mailings.c.id == mailing_id, mailings.c.status == "sending")
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else Mailing.model_validate(row)


async def share_if_sending(session: AsyncSession, mailing_id: uuid.UUID) -> Mailing | None:
    """The mailing while it is sending, share-locked (a pause or cancel waits for this batch;
    replicas share it), or None."""
    row = (
        (
            await session.execute(
                select(mailings)
                .where(mailings.c.id == mailing_id, mailings.c.status == "sending")
                .with_for_update(read=True, skip_locked=True)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else Mailing.model_validate(row)


async def insert_recipients(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if len(rows) >= COPY_FROM:
        await Copy.of(mailing_recipients, rows).write(session)
    elif rows:
        await session.execute(insert(mailing_recipients), rows)


async def claim_pending(
    session: AsyncSession, mailing_id: uuid.UUID, limit: int | None
) -> list[Recipient]:
    """Up to ``limit`` (None: all) pending recipients, locked; those another replica holds are
    skipped."""
    rows = await session.execute(
        select(mailing_recipients)
        .where(
            mailing_recipients.c.mailing_id == mailing_id, mailing_recipients.c.status == "pending"
        )
        .order_by(mailing_recipients.c.person_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return [Recipient.model_validate(row) for row in rows.mappings()]


_SET_OUTCOME = (
    update(mailing_recipients)
    .where(
        mailing_recipients.c.mailing_id == bindparam("_mailing"),
        mailing_recipients.c.person_id == bindparam("_person"),
    )
    .values(
        status=bindparam("_status"),
        reason=bindparam("_reason"),
        detail=bindparam("_detail"),
        queued_at=func.now(),
    )
)


async def record_outcomes(
    session: AsyncSession,
    mailing_id: uuid.UUID,
    outcomes: Sequence[tuple[uuid.UUID, str, str | None, str | None]],
) -> None:
    """(person, status, reason, detail) of claimed recipients: queued, excluded or failed now."""
    if outcomes:
        await session.execute(
            _SET_OUTCOME,
            [
                {"_mailing": mailing_id, "_person": p, "_status": s, "_reason": r, "_detail": d}
                for p, s, r, d in outcomes
            ],
        )


async def any_pending(session: AsyncSession, mailing_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(mailing_recipients.c.person_id)
        .where(
            mailing_recipients.c.mailing_id == mailing_id, mailing_recipients.c.status == "pending"
        )
        .limit(1)
    )
    return found is not None


async def finish_if_handed_over(session: AsyncSession, mailing_id: uuid.UUID) -> bool:
    """``done`` once nothing is pending (another replica's batch may still hold some)."""
    pending = (
        select(mailing_recipients.c.person_id)
        .where(
            mailing_recipients.c.mailing_id == mailing_id, mailing_recipients.c.status == "pending"
        )
        .exists()
    )
    result = await session.execute(
        update(mailings)
        .where(mailings.c.id == mailing_id, mailings.c.status == "sending", ~pending)
        .values(
            status="done",
            finished_at=func.now(),
            version=mailings.c.version + 1,
            updated_at=func.now(),
        )
        .returning(mailings.c.id)
    )
    return result.first() is not None


async def cancel_pending(session: AsyncSession, mailing_id: uuid.UUID) -> int:
    result = await session.execute(
        update(mailing_recipients)
        .where(
            mailing_recipients.c.mailing_id == mailing_id, mailing_recipients.c.status == "pending"
        )
        .values(status="cancelled")
        .returning(mailing_recipients.c.person_id)
    )
    return len(result.all())


async def recipients(
    session: AsyncSession,
    mailing_id: uuid.UUID,
    *,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
    reader: Principal,
) -> list[Recipient]:
    """A page of a mailing's recipients; the excluded only when ``reader`` may see them."""
    persons = directory.persons
    seen = select(persons.c.person_id).where(visible_to(reader, persons.c.directions))
    stmt = select(mailing_recipients).where(
        mailing_recipients.c.mailing_id == mailing_id,
        or_(mailing_recipients.c.status != "excluded", mailing_recipients.c.person_id.in_(seen)),
    )
    if status is not None:
        stmt = stmt.where(mailing_recipients.c.status == status)
    if after is not None:
        stmt = stmt.where(mailing_recipients.c.person_id > after)
    rows = await session.execute(stmt.order_by(mailing_recipients.c.person_id).limit(limit))
    return [Recipient.model_validate(row) for row in rows.mappings()]


async def record_result(
    session: AsyncSession,
    mailing_id: uuid.UUID,
    person_id: uuid.UUID,
    status: str,
    detail: str | None,
) -> tuple[str | None, list[str]] | None:
    """A delivery result on a queued recipient: (its address, the mailing's directions), or
    None when it is not queued (a result seen again, or not a recipient of ours)."""
    row = (
        await session.execute(
            update(mailing_recipients)
            .where(
                mailing_recipients.c.mailing_id == mailing_id,
                mailing_recipients.c.person_id == person_id,
                mailing_recipients.c.status == "queued",
            )
            .values(status=status, detail=detail, result_at=func.now())
            .returning(mailing_recipients.c.email)
        )
    ).first()
    if row is None:
        return None
    directions = await session.scalar(
        select(mailings.c.directions).where(mailings.c.id == mailing_id)
    )
    return row.email, list(directions or [])


async def result_facts(
    session: AsyncSession, mailing_id: uuid.UUID, person_id: uuid.UUID
) -> dict[str, Any]:
    """What a recipient's published result tells besides the result: the mailing's campaign,
    channel and directions, the recipient's organization and when the result was recorded."""
    row = (
        await session.execute(
            select(
                mailings.c.campaign_id,
                mailings.c.channel,
                mailings.c.directions,
                mailing_recipients.c.organization_id,
                mailing_recipients.c.result_at,
            )
            .join(mailings, mailings.c.id == mailing_recipients.c.mailing_id)
            .where(
                mailing_recipients.c.mailing_id == mailing_id,
                mailing_recipients.c.person_id == person_id,
            )
        )
    ).one()
    return dict(row._mapping)


async def fail_unanswered_faxes(
    session: AsyncSession, minutes: int, detail: str
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """Fax recipients handed to the gateway more than ``minutes`` ago with no result yet:
    ``failed`` (reason ``no_callback``); their mailings and persons. A callback coming later
    changes nothing."""
    result = await session.execute(
        update(mailing_recipients)
        .where(
            mailing_recipients.c.status == "queued",
            mailing_recipients.c.queued_at < func.now() - timedelta(minutes=minutes),
            mailing_recipients.c.mailing_id.in_(
                select(mailings.c.id).where(mailings.c.channel == "fax")
            ),
        )
        .values(status="failed", reason="no_callback", detail=detail, result_at=func.now())
        .returning(mailing_recipients.c.mailing_id, mailing_recipients.c.person_id)
    )
    return [(row.mailing_id, row.person_id) for row in result]


async def kept_candidates(session: AsyncSession, mailing_id: uuid.UUID) -> list[Candidate]:
    """A started mailing's recipients as kept (a greeting's day names its own)."""
    rows = await session.execute(
        select(mailing_recipients.c.person_id, mailing_recipients.c.organization_id)
        .where(mailing_recipients.c.mailing_id == mailing_id)
        .order_by(mailing_recipients.c.person_id)
    )
    return [Candidate(row.person_id, row.organization_id) for row in rows]


async def kept_audience(session: AsyncSession, mailing_id: uuid.UUID) -> list[uuid.UUID] | None:
    """The organizations a dynamic list was resolved to when the mailing was sent (None: not
    resolved so)."""
    found = await session.scalar(
        select(mailings.c.audience_organizations).where(mailings.c.id == mailing_id)
    )
    return None if found is None else list(found)


async def record_complaint(
    session: AsyncSession, mailing_id: uuid.UUID, person_id: uuid.UUID
) -> bool:
    """A recipient reported the message as spam: ``complained`` (once; only a message handed
    over or sent can be complained about)."""
    found = await session.execute(
        update(mailing_recipients)
        .where(
            mailing_recipients.c.mailing_id == mailing_id,
            mailing_recipients.c.person_id == person_id,
            mailing_recipients.c.status.in_(("queued", "sent")),
        )
        .values(status="complained", detail="reported as spam", result_at=func.now())
        .returning(mailing_recipients.c.person_id)
    )
    return found.first() is not None
