"""SQL of campaigns' consent and bounce facts kept per person."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, literal, select
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.mailing_facts.rules import AddressReview, ChannelConsent
from clientele_directory.tables import address_reviews, person_mailing_consents, persons


async def person_version(session: AsyncSession, person_id: uuid.UUID) -> int | None:
    """The person's version (locked, so facts about one person apply one at a time), or None
    when the directory has no such person."""
    return await session.scalar(
        select(persons.c.version).where(persons.c.id == person_id).with_for_update()
    )


async def consent(
    session: AsyncSession, person_id: uuid.UUID, channel: str
) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(person_mailing_consents).where(
                person_mailing_consents.c.person_id == person_id,
                person_mailing_consents.c.channel == channel,
            )
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def save_consent(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Keep the entry unless a newer one of the ledger is kept already; whether it was kept."""
    stmt = upsert(person_mailing_consents).values(**values)
    kept = stmt.on_conflict_do_update(
        index_elements=["person_id", "channel"],
        set_={name: stmt.excluded[name] for name in values if name not in ("person_id", "channel")},
        where=person_mailing_consents.c.consent_id < stmt.excluded.consent_id,
    ).returning(person_mailing_consents.c.person_id)
    return (await session.execute(kept)).first() is not None


async def mark_address(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Mark the address for review (a later bounce replaces an earlier one's facts)."""
    stmt = upsert(address_reviews).values(**values)
    marked = stmt.on_conflict_do_update(
        index_elements=["person_id", "email"],
        set_={name: stmt.excluded[name] for name in ("mailing_id", "reason", "bounced_at")},
        where=address_reviews.c.bounced_at <= stmt.excluded.bounced_at,
    ).returning(address_reviews.c.person_id)
    return (await session.execute(marked)).first() is not None


async def consents_of(session: AsyncSession, person_id: uuid.UUID) -> dict[str, ChannelConsent]:
    rows = await session.execute(
        select(person_mailing_consents).where(person_mailing_consents.c.person_id == person_id)
    )
    return {row.channel: ChannelConsent.model_validate(row, from_attributes=True) for row in rows}


async def reviews_of(
    session: AsyncSession, person_id: uuid.UUID, emails: Sequence[str]
) -> list[AddressReview]:
    """The marks on the addresses the person still has (compared in any case)."""
    if not emails:
        return []
    rows = await session.execute(
        select(address_reviews)
        .where(
            address_reviews.c.person_id == person_id,
            func.lower(address_reviews.c.email).in_([email.lower() for email in emails]),
        )
        .order_by(address_reviews.c.email)
    )
    return [AddressReview.model_validate(row, from_attributes=True) for row in rows]


async def clear_review(session: AsyncSession, person_id: uuid.UUID, email: str) -> str | None:
    """Remove the mark on the address (compared in any case); the address as marked, or None."""
    return await session.scalar(
        delete(address_reviews)
        .where(
            address_reviews.c.person_id == person_id,
            func.lower(address_reviews.c.email) == email.lower(),
        )
        .returning(address_reviews.c.email)
    )


async def carry_reviews(
    session: AsyncSession, survivor_id: uuid.UUID, merged_id: uuid.UUID
) -> list[str]:
    """The merged person's marks, now the survivor's too (the later bounce kept where both
    have one); the addresses newly marked or updated on the survivor."""
    theirs = select(
        literal(survivor_id).label("person_id"),
        address_reviews.c.email,
        address_reviews.c.mailing_id,
        address_reviews.c.reason,
        address_reviews.c.bounced_at,
    ).where(address_reviews.c.person_id == merged_id)
    stmt = upsert(address_reviews).from_select(
        ["person_id", "email", "mailing_id", "reason", "bounced_at"], theirs
    )
    carried = stmt.on_conflict_do_update(
        index_elements=["person_id", "email"],
        set_={name: stmt.excluded[name] for name in ("mailing_id", "reason", "bounced_at")},
        where=address_reviews.c.bounced_at < stmt.excluded.bounced_at,
    ).returning(address_reviews.c.email)
    return sorted((await session.scalars(carried)).all())
