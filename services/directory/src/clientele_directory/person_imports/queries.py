"""SQL of an import of persons: the persons a chunk's rows may match and the organizations they
name, among those the caller sees."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import ARRAY, Text, bindparam, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.person_imports.rules import KnownOrganization
from clientele_directory.persons.queries import person_select, to_person
from clientele_directory.persons.rules import Person
from clientele_directory.tables import organizations, persons
from clientele_directory.visibility import person_visible

MATCHING_PERSON_IDS = text(
    "SELECT m.id FROM unnest(:emails) AS e(email) CROSS JOIN LATERAL (SELECT p.id FROM persons p"
    " WHERE directory_fold_emails(p.emails) @> ARRAY[e.email] OFFSET 0) AS m"
    " UNION SELECT m.id FROM unnest(:phones) AS x(number) CROSS JOIN LATERAL (SELECT p.id"
    " FROM persons p WHERE p.phones @> jsonb_build_array(jsonb_build_object('number', x.number))"
    " OFFSET 0) AS m"
).bindparams(bindparam("emails", type_=ARRAY(Text)), bindparam("phones", type_=ARRAY(Text)))
"""Persons with one of a chunk's e-mails (case-folded) or phones (E.164): a probe of the GIN
index on folded e-mails or on phones (migration 0011) per value. Each probe is a subquery of
its own (``OFFSET 0`` keeps it from being joined): as a join, a plan made for fewer values or
persons than there are (a prepared statement's generic plan counts 10 values; the statistics of
a table the import is filling count the persons before it) tested every value against every
person, a scan of the table per chunk that took 40-64 s at 20,000 persons (ADR 75)."""

MERGE_PENDING = text(
    "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i"
    " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
    " WHERE a.amname = 'gin' AND i.indrelid = 'persons'::regclass"
)
"""Merge the pending lists of the persons' GIN indexes into the indexes, after a chunk's rows
are written: every probe of the next chunk's look-ups (e-mails, phones) reads the whole pending
list, which the import's limit (``IMPORT_SETTINGS``) lets grow to 16 MB. The other GIN indexes
(search, names, ...) are merged too, so that searches during a long import do not read such a
list either (ADR 75)."""

NAME_KEYS = text("SELECT n, directory_name_key(n) FROM unnest(:names) AS n").bindparams(
    bindparam("names", type_=ARRAY(Text))
)


async def matching_persons(
    session: AsyncSession, principal: Principal, emails: list[str], phones: list[str]
) -> list[Person]:
    """Live persons the principal sees with one of the e-mails or phones (without their
    employments), locked for the import (a person the caller cannot see is never matched)."""
    if not emails and not phones:
        return []
    ids = list(await session.scalars(MATCHING_PERSON_IDS, {"emails": emails, "phones": phones}))
    if not ids:
        return []
    rows = (
        await session.execute(
            person_select()
            .where(
                persons.c.id.in_(ids),
                persons.c.deleted_at.is_(None),
                person_visible(principal),
            )
            .order_by(persons.c.id)
            .with_for_update(of=persons)
        )
    ).all()
    return [to_person(row) for row in rows]


async def name_keys(session: AsyncSession, names: list[str]) -> dict[str, str]:
    """Each name's key as organizations' ``name_key`` is computed; a name that is all legal
    form or punctuation («ООО») has an empty key, names no organization and is left out."""
    if not names:
        return {}
    found = (await session.execute(NAME_KEYS, {"names": names})).all()
    return {str(name): str(key) for name, key in found if key}


async def named_organizations(
    session: AsyncSession, principal: Principal, inns: list[str], keys: list[str]
) -> list[KnownOrganization]:
    """Live organizations the principal sees with one of the INNs or name keys, kept from
    being changed or deleted until the import ends (its persons are linked to them)."""
    if not inns and not keys:
        return []
    rows: Any = (
        await session.execute(
            select(organizations.c.id, organizations.c.inn, organizations.c.name_key)
            .where(
                organizations.c.deleted_at.is_(None),
                or_(organizations.c.inn.in_(inns), organizations.c.name_key.in_(keys)),
                visible_to(principal, organizations.c.directions),
            )
            .with_for_update(read=True, of=organizations)
        )
    ).all()
    return [KnownOrganization(id=r.id, inn=r.inn, name_key=r.name_key) for r in rows]


async def now(session: AsyncSession) -> datetime:
    """The transaction's time."""
    return (await session.execute(text("SELECT now()"))).scalar_one()  # type: ignore[no-any-return]
