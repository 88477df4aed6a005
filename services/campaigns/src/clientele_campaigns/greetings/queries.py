"""SQL of the professional holidays calendar, greetings and their once-a-year keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import bindparam, cast, func, insert, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import String, Uuid

from clientele_campaigns.contacts.queries import CONTACT_COLUMNS
from clientele_campaigns.contacts.rules import Contact, Premises
from clientele_campaigns.greetings.rules import Greeting, GreetingAudience, Holiday
from clientele_campaigns.lists import queries as lists
from clientele_campaigns.tables import (
    BIRTHDAY_MONTH_DAY,
    directory,
    greeting_sends,
    greetings,
    mailing_contacts,
    mailing_organizations,
    mailing_recipients,
    professional_holidays,
)

# --- the holidays calendar --------------------------------------------------------------------


async def insert_holiday(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(professional_holidays).values(**values))


async def holiday(session: AsyncSession, holiday_id: uuid.UUID) -> Holiday | None:
    row = (
        (
            await session.execute(
                select(professional_holidays).where(professional_holidays.c.id == holiday_id)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else Holiday.model_validate(row)


async def holidays(session: AsyncSession) -> list[Holiday]:
    rows = await session.execute(
        select(professional_holidays)
        .where(professional_holidays.c.deleted_at.is_(None))
        .order_by(professional_holidays.c.name, professional_holidays.c.id)
    )
    return [Holiday.model_validate(row) for row in rows.mappings()]


# --- greetings ---------------------------------------------------------------------------------


async def insert_greeting(session: AsyncSession, values: dict[str, Any]) -> None:
    await session.execute(insert(greetings).values(**values))


async def greeting(
    session: AsyncSession, greeting_id: uuid.UUID, *, lock: bool = False
) -> Greeting | None:
    stmt = select(greetings).where(greetings.c.id == greeting_id)
    row = (await session.execute(stmt.with_for_update() if lock else stmt)).mappings().first()
    return None if row is None else Greeting.model_validate(row)


async def list_visible(session: AsyncSession, principal: Principal, limit: int) -> list[Greeting]:
    rows = await session.execute(
        select(greetings)
        .where(visible_to(principal, greetings.c.directions))
        .order_by(greetings.c.created_at.desc(), greetings.c.id)
        .limit(limit)
    )
    return [Greeting.model_validate(row) for row in rows.mappings()]


async def due(session: AsyncSession, now: datetime) -> Greeting | None:
    """The active greeting longest due for a look, locked (a replica sweeping it is skipped)."""
    row = (
        (
            await session.execute(
                select(greetings)
                .where(
                    greetings.c.active,
                    or_(greetings.c.next_run_at.is_(None), greetings.c.next_run_at <= now),
                )
                .order_by(greetings.c.next_run_at.asc().nulls_first(), greetings.c.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else Greeting.model_validate(row)


async def set_next_run(session: AsyncSession, greeting_id: uuid.UUID, at: datetime) -> None:
    """The persisted schedule: when the sweeper looks at the greeting again (not a version)."""
    await session.execute(
        update(greetings).where(greetings.c.id == greeting_id).values(next_run_at=at)
    )


# --- whom a greeting reaches -------------------------------------------------------------------


async def audience_organizations(
    session: AsyncSession, directions: list[str], audience: GreetingAudience
) -> dict[uuid.UUID, Premises]:
    """The organizations of the greeting's directions (not deleted), in its list and
    industries where it names them, with their industry and time zone."""
    organizations = directory.organizations
    premises = mailing_organizations
    stmt = (
        select(
            organizations.c.organization_id,
            premises.c.postal_address,
            premises.c.fax,
            premises.c.industry,
            premises.c.time_zone,
        )
        .select_from(
            organizations.outerjoin(
                premises, premises.c.organization_id == organizations.c.organization_id
            )
        )
        .where(
            organizations.c.directions.overlap(
                cast(bindparam(None, sorted(directions), type_=ARRAY(String)), ARRAY(String(64)))
            ),
            organizations.c.deleted.is_(False),
        )
    )
    if audience.list_id is not None:
        stmt = stmt.where(organizations.c.organization_id.in_(lists.members(audience.list_id)))
    if audience.industries:
        wanted = sorted({i.casefold() for i in audience.industries})
        stmt = stmt.where(func.lower(func.btrim(premises.c.industry)).in_(wanted))
    rows = await session.execute(stmt)
    return {
        row.organization_id: Premises.model_validate(
            {**row._mapping, "organization_id": row.organization_id}
        )
        for row in rows
    }


async def born_on(
    session: AsyncSession, days: Iterable[tuple[int, int]], organization_ids: Iterable[uuid.UUID]
) -> list[Contact]:
    """The persons born on any of these (month, day) employed at any of these organizations."""
    wanted = sorted(set(organization_ids))
    pairs = sorted(set(days))
    if not wanted or not pairs:
        return []
    born = tuple_(*BIRTHDAY_MONTH_DAY)
    rows = await session.execute(
        select(*CONTACT_COLUMNS)
        .where(
            mailing_contacts.c.birthday.is_not(None),
            born.in_(pairs),
            mailing_contacts.c.organization_ids.overlap(
                cast(bindparam(None, wanted, type_=ARRAY(Uuid)), ARRAY(Uuid))
            ),
        )
        .order_by(mailing_contacts.c.person_id)
    )
    return [Contact.model_validate(row._mapping) for row in rows]


async def outcomes(
    session: AsyncSession,
    greeting_id: uuid.UUID,
    occasion: str,
    due: Iterable[tuple[uuid.UUID, int]],
) -> dict[uuid.UUID, str]:
    """The outcome kept for each (person, year) that has one: ``greeted`` or ``excluded``."""
    keys = list(due)
    if not keys:
        return {}
    rows = await session.execute(
        select(greeting_sends.c.person_id, greeting_sends.c.outcome).where(
            greeting_sends.c.greeting_id == greeting_id,
            greeting_sends.c.occasion == occasion,
            tuple_(greeting_sends.c.person_id, greeting_sends.c.year).in_(keys),
        )
    )
    return {row.person_id: row.outcome for row in rows}


async def claim_sends(
    session: AsyncSession,
    greeting_id: uuid.UUID,
    occasion: str,
    mailing_id: uuid.UUID,
    due: Iterable[tuple[uuid.UUID, date]],
) -> set[uuid.UUID]:
    """Record each (person, local date) as greeted for the occasion in that date's year by
    ``mailing_id``; the persons newly recorded (those greeted this year already are left out;
    those excluded before are taken again)."""
    rows = [
        {
            "greeting_id": greeting_id,
            "person_id": person_id,
            "occasion": occasion,
            "year": on.year,
            "mailing_id": mailing_id,
            "local_date": on,
            "outcome": "greeted",
            "reason": None,
        }
        for person_id, on in due
    ]
    if not rows:
        return set()
    stmt = upsert(greeting_sends).values(rows)
    result = await session.execute(
        stmt.on_conflict_do_update(
            index_elements=["greeting_id", "person_id", "occasion", "year"],
            set_={
                "mailing_id": stmt.excluded.mailing_id,
                "local_date": stmt.excluded.local_date,
                "outcome": stmt.excluded.outcome,
                "reason": stmt.excluded.reason,
            },
            where=greeting_sends.c.outcome == "excluded",
        ).returning(greeting_sends.c.person_id)
    )
    return {row.person_id for row in result}


async def keep_exclusions(session: AsyncSession, mailing_id: uuid.UUID) -> None:
    """The day's recipients its mailing excluded are kept as excluded, with the reason (no
    greeting this year yet)."""
    recipients = mailing_recipients
    await session.execute(
        update(greeting_sends)
        .where(
            greeting_sends.c.mailing_id == mailing_id,
            recipients.c.mailing_id == mailing_id,
            recipients.c.person_id == greeting_sends.c.person_id,
            recipients.c.status == "excluded",
        )
        .values(outcome="excluded", reason=recipients.c.reason)
    )


async def sends(
    session: AsyncSession, greeting_id: uuid.UUID, year: int | None, limit: int, reader: Principal
) -> list[dict[str, Any]]:
    """The greeting's outcomes; the excluded only when ``reader`` may see them (a greeting of
    several directions names no excluded person of a direction the reader lacks), as a
    mailing's recipients."""
    persons = directory.persons
    seen = select(persons.c.person_id).where(visible_to(reader, persons.c.directions))
    stmt = select(greeting_sends).where(
        greeting_sends.c.greeting_id == greeting_id,
        or_(greeting_sends.c.outcome != "excluded", greeting_sends.c.person_id.in_(seen)),
    )
    if year is not None:
        stmt = stmt.where(greeting_sends.c.year == year)
    rows = await session.execute(
        stmt.order_by(greeting_sends.c.local_date.desc(), greeting_sends.c.person_id).limit(limit)
    )
    return [dict(row) for row in rows.mappings()]
