"""SQL of the contacts read model."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from clientele_shared.directory_read_models import any_of
from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.expression import bindparam
from sqlalchemy.types import Uuid

from clientele_campaigns.contacts.rules import Contact, Premises
from clientele_campaigns.tables import mailing_contacts, mailing_organizations

CONTACT_COLUMNS = [
    mailing_contacts.c.person_id,
    mailing_contacts.c.emails,
    mailing_contacts.c.birthday,
    mailing_contacts.c.gender,
    mailing_contacts.c.attributes,
    mailing_contacts.c.employments,
]


async def contacts_of(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Contact]:
    rows = await session.execute(
        select(*CONTACT_COLUMNS).where(any_of(mailing_contacts.c.person_id, ids))
    )
    return {row.person_id: Contact.model_validate(row._mapping) for row in rows}


def _employed_at(wanted: list[uuid.UUID]) -> Select[Any]:
    return (
        select(*CONTACT_COLUMNS)
        .where(
            mailing_contacts.c.organization_ids.overlap(
                func.cast(bindparam(None, wanted, type_=ARRAY(Uuid)), ARRAY(Uuid))
            )
        )
        .order_by(mailing_contacts.c.person_id)
    )


async def employed_at(
    session: AsyncSession, organization_ids: Iterable[uuid.UUID]
) -> list[Contact]:
    """The persons with a live employment at any of these organizations."""
    wanted = sorted(set(organization_ids))
    if not wanted:
        return []
    rows = await session.execute(_employed_at(wanted))
    return [Contact.model_validate(row._mapping) for row in rows]


async def employed_at_pages(
    session: AsyncSession, organization_ids: Iterable[uuid.UUID], page: int = 5_000
) -> AsyncIterator[list[Contact]]:
    """The persons with a live employment at any of these organizations, ``page`` at a time
    from a server-side cursor (each person once, in id order; a large audience is never
    held whole)."""
    wanted = sorted(set(organization_ids))
    if not wanted:
        return
    result = await session.stream(_employed_at(wanted).execution_options(yield_per=page))
    async for rows in result.partitions():
        yield [Contact.model_validate(row._mapping) for row in rows]


async def premises_of(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Premises]:
    table = mailing_organizations
    rows = await session.execute(
        select(
            table.c.organization_id,
            table.c.postal_address,
            table.c.fax,
            table.c.industry,
            table.c.time_zone,
        ).where(any_of(table.c.organization_id, ids))
    )
    return {row.organization_id: Premises.model_validate(row._mapping) for row in rows}
