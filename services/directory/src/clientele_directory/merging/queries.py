"""SQL of merging: moving what refers to the merged record, marking it merged, and finding
duplicate candidates."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import (
    ColumnElement,
    Float,
    Table,
    Text,
    and_,
    cast,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, array
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import EntityKind
from clientele_directory.blocking import active
from clientele_directory.imports.queries import (
    MATCHING_IDS,
    NAME_SIMILARITY,
    similar_names,
)
from clientele_directory.organizations.queries import organization_select
from clientele_directory.persons.queries import person_select, to_employment
from clientele_directory.persons.rules import Employment, Person
from clientele_directory.tables import (
    attribute_definitions,
    employments,
    organization_list_members,
    organizations,
    persons,
    unwanted_register,
)
from clientele_directory.visibility import person_visible

TABLES = {EntityKind.ORGANIZATION: organizations, EntityKind.PERSON: persons}


def _touched(subject: str) -> dict[str, Any]:
    return {"updated_by": subject, "updated_at": func.now()}


async def lock_employments(
    session: AsyncSession, column: ColumnElement[uuid.UUID], ids: Iterable[uuid.UUID]
) -> None:
    """Lock every employment (ended and deleted ones too) of these organizations or persons, in
    id order. The organization merge takes those of the merged organization, the person merge
    those of both persons, both in this order and before writing any: an organization merge and
    a person merge sharing employments wait for each other instead of deadlocking."""
    await session.execute(
        select(employments.c.id)
        .where(column.in_(list(ids)))
        .order_by(employments.c.id)
        .with_for_update()
    )


async def update_survivor(
    session: AsyncSession,
    kind: EntityKind,
    record_id: uuid.UUID,
    values: dict[str, Any],
    *,
    version: int,
    subject: str,
) -> None:
    table = TABLES[kind]
    await session.execute(
        update(table)
        .where(table.c.id == record_id)
        .values(**values, version=version, **_touched(subject))
    )


async def mark_merged(
    session: AsyncSession,
    kind: EntityKind,
    *,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
    other_version: int,
    subject: str,
) -> list[Any]:
    """Soft-delete the other with ``merged_into``; the records merged into it earlier now point
    at the survivor (answered as ``(id, version)``)."""
    table: Table = TABLES[kind]
    await session.execute(
        update(table)
        .where(table.c.id == other_id)
        .values(
            merged_into=survivor_id,
            version=other_version,
            deleted_at=func.now(),
            deleted_by=subject,
            **_touched(subject),
        )
    )
    return list(
        (
            await session.execute(
                update(table)
                .where(table.c.merged_into == other_id)
                .values(merged_into=survivor_id)
                .returning(table.c.id, table.c.version)
            )
        ).all()
    )


async def close_register_entries(
    session: AsyncSession,
    column: str,
    *,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
    subject: str,
    reason: str,
) -> list[uuid.UUID]:
    """Close the other's active entry when the survivor has one of its own."""
    target = unwanted_register.c[column]
    listed = unwanted_register.alias("listed")
    return list(
        (
            await session.scalars(
                update(unwanted_register)
                .where(
                    target == other_id,
                    active,
                    exists(
                        select(1).where(
                            listed.c[column] == survivor_id, listed.c.removed_at.is_(None)
                        )
                    ),
                )
                .values(removed_at=func.now(), removed_by=subject, removal_reason=reason)
                .returning(unwanted_register.c.id)
            )
        ).all()
    )


async def move_register_entries(
    session: AsyncSession, column: str, *, survivor_id: uuid.UUID, other_id: uuid.UUID
) -> list[uuid.UUID]:
    return list(
        (
            await session.scalars(
                update(unwanted_register)
                .where(unwanted_register.c[column] == other_id)
                .values({column: survivor_id})
                .returning(unwanted_register.c.id)
            )
        ).all()
    )


async def reference_definitions(session: AsyncSession, kind: EntityKind) -> list[Any]:
    """``(entity_kind, key)`` of every custom attribute that refers to a record of ``kind``."""
    return list(
        (
            await session.execute(
                select(attribute_definitions.c.entity_kind, attribute_definitions.c.key)
                .where(attribute_definitions.c.reference_kind == kind.value)
                .order_by(attribute_definitions.c.entity_kind, attribute_definitions.c.key)
            )
        ).all()
    )


async def retarget(
    session: AsyncSession,
    holder: EntityKind,
    key: str,
    *,
    survivor_id: uuid.UUID,
    other_id: uuid.UUID,
    subject: str,
) -> list[Any]:
    """Point the attribute ``key`` of every other record that refers to the other at the
    survivor, as a new version of each (answered as ``(id, version)``)."""
    table: Table = TABLES[holder]
    return list(
        (
            await session.execute(
                update(table)
                .where(
                    table.c.attributes[key].astext == str(other_id),
                    table.c.id.not_in([survivor_id, other_id]),
                )
                .values(
                    attributes=table.c.attributes.op("||", return_type=JSONB)(
                        func.jsonb_build_object(
                            cast(literal(key), Text), cast(literal(str(survivor_id)), Text)
                        )
                    ),
                    version=table.c.version + 1,
                    **_touched(subject),
                )
                .returning(table.c.id, table.c.version)
            )
        ).all()
    )


async def move_organization_employments(
    session: AsyncSession, *, survivor_id: uuid.UUID, other_id: uuid.UUID, subject: str
) -> int:
    result = await session.execute(
        update(employments)
        .where(employments.c.organization_id == other_id)
        .values(organization_id=survivor_id, version=employments.c.version + 1, **_touched(subject))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult for DML


async def move_list_memberships(
    session: AsyncSession, *, survivor_id: uuid.UUID, other_id: uuid.UUID
) -> int:
    members = organization_list_members
    result = await session.execute(
        pg_insert(members)
        .from_select(
            ["list_id", "organization_id", "added_by"],
            select(members.c.list_id, literal(survivor_id), members.c.added_by).where(
                members.c.organization_id == other_id
            ),
        )
        .on_conflict_do_nothing()
    )
    await session.execute(delete(members).where(members.c.organization_id == other_id))
    return int(result.rowcount)  # type: ignore[attr-defined]  # a CursorResult for DML


async def live_jobs(session: AsyncSession, person_id: uuid.UUID) -> list[Employment]:
    """Every live employment of the person (whoever may see it), locked."""
    rows = (
        await session.execute(
            select(employments)
            .where(employments.c.person_id == person_id, employments.c.deleted_at.is_(None))
            .order_by(employments.c.created_at, employments.c.id)
            .with_for_update()
        )
    ).all()
    return [to_employment(row) for row in rows]


async def move_ended_employments(
    session: AsyncSession, *, survivor_id: uuid.UUID, other_id: uuid.UUID, subject: str
) -> list[Any]:
    """The other's remaining (ended) employments become the survivor's: ``(id, version)``."""
    return list(
        (
            await session.execute(
                update(employments)
                .where(employments.c.person_id == other_id)
                .values(
                    person_id=survivor_id, version=employments.c.version + 1, **_touched(subject)
                )
                .returning(employments.c.id, employments.c.version)
            )
        ).all()
    )


# --- duplicate candidates --------------------------------------------------------------------


async def set_similarity_threshold(session: AsyncSession, threshold: float) -> None:
    await session.execute(
        select(func.set_config("pg_trgm.similarity_threshold", str(threshold), True))
    )


async def visible_organizations_by_name(
    session: AsyncSession, principal: Principal, ids: set[uuid.UUID], legal_name: str
) -> list[Any]:
    """Live organizations the principal sees among ``ids``, with ``name_similarity`` to
    ``legal_name`` (without legal forms)."""
    name = func.directory_name_key(literal(legal_name, Text))
    similarity = func.coalesce(func.similarity(organizations.c.name_key, name), 0.0)
    return list(
        (
            await session.execute(
                organization_select()
                .add_columns(similarity.label("name_similarity"))
                .where(
                    organizations.c.id.in_(ids),
                    organizations.c.deleted_at.is_(None),
                    visible_to(principal, organizations.c.directions),
                )
            )
        ).all()
    )


def _person_key() -> ColumnElement[str]:
    """SQL: the person's name as "last first" in Latin letters, the Cyrillic one first (indexed
    for nearest-neighbour scans, migration 0015)."""
    return func.directory_person_key(
        persons.c.last_name,
        persons.c.first_name,
        persons.c.last_name_latin,
        persons.c.first_name_latin,
    )


def _candidate(principal: Principal, person_id: uuid.UUID) -> ColumnElement[bool]:
    return and_(
        persons.c.id != person_id, persons.c.deleted_at.is_(None), person_visible(principal)
    )


async def persons_by_email(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, emails: list[str]
) -> set[uuid.UUID]:
    """Other live persons the principal sees with one of ``emails`` (folded), own or at work."""
    candidate = _candidate(principal, person_id)
    wanted = array(emails, type_=Text).cast(ARRAY(Text))
    own = await session.scalars(
        select(persons.c.id).where(
            func.directory_fold_emails(persons.c.emails).op("&&")(wanted), candidate
        )
    )
    found = set(own.all())
    at_work = await session.scalars(
        select(employments.c.person_id)
        .join(persons, persons.c.id == employments.c.person_id)
        .where(
            func.directory_fold_emails(employments.c.emails).op("&&")(wanted),
            employments.c.deleted_at.is_(None),
            candidate,
        )
    )
    return found | set(at_work.all())


async def persons_by_phone(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, person: Person
) -> set[uuid.UUID]:
    same_phone = [
        persons.c.phones.contains([{"number": p.number, "extension": p.extension}])
        for p in person.phones
    ]
    found = await session.scalars(
        select(persons.c.id).where(or_(*same_phone), _candidate(principal, person_id))
    )
    return set(found.all())


async def person_name_keys(session: AsyncSession, person_id: uuid.UUID) -> list[str]:
    """The person's name keys (Cyrillic and Latin), those he has."""
    keys = (
        await session.execute(
            select(
                func.directory_person_name_key(persons.c.last_name, persons.c.first_name),
                func.directory_person_name_key(
                    persons.c.last_name_latin, persons.c.first_name_latin
                ),
            ).where(persons.c.id == person_id)
        )
    ).one()
    return sorted({key for key in keys if key})


async def persons_by_name(
    session: AsyncSession, principal: Principal, person_id: uuid.UUID, name: str, scan: int
) -> set[uuid.UUID]:
    """The ``scan`` nearest similar names (a GiST scan)."""
    key, wanted_name = _person_key(), literal(name, Text)
    found = await session.scalars(
        select(persons.c.id)
        .where(key.op("%")(wanted_name), _candidate(principal, person_id))
        .order_by(key.op("<->", return_type=Float)(wanted_name))
        .limit(scan)
    )
    return set(found.all())


async def persons_with_similarity(
    session: AsyncSession, ids: set[uuid.UUID], targets: list[str]
) -> list[Any]:
    """The persons with ``name_similarity``: the best trigram similarity to the ``targets``."""
    similarity: ColumnElement[float] = literal(0.0)
    if targets:
        key = _person_key()
        best = func.greatest(*(func.similarity(key, literal(t, Text)) for t in targets))
        similarity = func.coalesce(best, 0.0)
    return list(
        (
            await session.execute(
                person_select()
                .add_columns(similarity.label("name_similarity"))
                .where(persons.c.id.in_(ids))
            )
        ).all()
    )


async def organizations_matching(
    session: AsyncSession, *, inns: list[str], emails: list[str], phones: list[str]
) -> set[uuid.UUID]:
    """Live organizations with one of the INNs, e-mails or phones (the import's look-up)."""
    if not (inns or emails or phones):
        return set()
    params = {"ids": [], "inns": inns, "emails": emails, "phones": phones}
    return set(await session.scalars(MATCHING_IDS, params))


async def organizations_named_like(
    session: AsyncSession,
    principal: Principal,
    org_id: uuid.UUID,
    *,
    with_inn: bool,
    scan: int,
) -> set[uuid.UUID]:
    """Organizations the principal sees with a name similar to the organization's (the import's
    look-up: one with an INN is compared only with those without one)."""
    await set_similarity_threshold(session, NAME_SIMILARITY)
    params: dict[str, Any] = {
        "nums": [0],
        "positions": [1],
        "created": [org_id],  # the organization itself comes first: never its own candidate
        "threshold": NAME_SIMILARITY,
        "limit": scan,
    }
    if not principal.sees_all_directions:
        params["dirs"] = sorted(principal.directions)
    similar = similar_names(with_inn, principal.sees_all_directions)
    return {row.id for row in await session.execute(similar, params)}
