"""The directory's state topics (ADR 18): the full snapshot of every record a change touches."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from clientele_shared.events.catalog import EMPLOYEES, LIST_MEMBERS_STATE, ORGANIZATIONS, PERSONS
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.directory import (
    DirectionState,
    EmployeeState,
    EmploymentState,
    ListMemberState,
    OrganizationListState,
    OrganizationState,
    PersonState,
    RegisterEntryState,
)
from clientele_shared.events.state import StateSource, Tombstone, next_revision, next_revisions
from sqlalchemy import Column, ColumnElement, Table, Text, cast, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.blocking import organization_blocked_expr, person_blocked_expr
from clientele_directory.organizations.rules import Organization
from clientele_directory.persons.rules import PERSON_FIELDS, Person
from clientele_directory.publishing import created_payload
from clientele_directory.tables import (
    directions,
    employees,
    employments,
    organization_list_members,
    organization_lists,
    organizations,
    persons,
    unwanted_register,
)
from clientele_directory.values import STORED


def changed_organizations(envelope: Envelope) -> list[str]:
    """The organizations an event of the organizations topic changes (a merge: both)."""
    payload = envelope.payload
    if envelope.type == "directory.organization.merged":
        return [payload["survivor_id"], payload["merged_id"]]
    found = payload.get("organization_id")
    return [found] if found else []


def organization_state(outbox: Outbox, org: Organization, revision: int) -> Envelope:
    return outbox.envelope(
        "directory.organization.state",
        OrganizationState(
            organization_id=org.id,
            version=org.version,
            revision=revision,
            **org.fields(),
            attributes=org.attributes,
            blocked=org.blocked,
            deleted=org.deleted_at is not None,
            merged_into=org.merged_into,
            created_at=org.created_at,
            updated_at=org.updated_at,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
    )


async def _lock(
    session: AsyncSession, table: Table, ids: Sequence[Any], key: str = "id"
) -> list[Any]:
    """Lock the records in id order before numbering their snapshots: two transactions that
    snapshot one record take revisions in the order they commit, and the second reads what the
    first wrote."""
    column = table.c[key]
    wanted = sorted({uuid.UUID(str(value)) if key == "id" else value for value in ids})
    await session.execute(
        select(column).where(column.in_(wanted)).order_by(column).with_for_update(key_share=True)
    )
    return wanted


class OrganizationSnapshots:
    """Reads organizations for their state records, in the transaction of the change."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        wanted = await _lock(session, organizations, ids)
        rows = (
            await session.execute(
                select(
                    organizations,
                    organization_blocked_expr().label("blocked"),
                    next_revision().label("revision"),
                )
                .where(organizations.c.id.in_(wanted))
                .order_by(organizations.c.id)
            )
        ).all()
        return [
            organization_state(
                self.outbox,
                Organization.model_validate(row, from_attributes=True, context=STORED),
                row.revision,
            )
            for row in rows
        ]


def created_state_payload(
    org_id: uuid.UUID,
    values: Mapping[str, Any],
    blocked: bool,
    revision: int,
    now: datetime,
) -> dict[str, Any]:
    """The payload :func:`organization_state` makes of a new organization written at ``now``,
    from its ``storage_values`` without a model (ADR 70: a bulk writer's)."""
    return {
        **created_payload(org_id, values, blocked),
        "revision": revision,
        "deleted": False,
        "merged_into": None,
        "created_at": now,
        "updated_at": now,
    }


async def written_organization_states(
    session: AsyncSession, outbox: Outbox, written: Sequence[Organization]
) -> list[Envelope]:
    """The state records of organizations a bulk writer (the import) has just written, built
    from the organizations as written (their ``blocked`` flag and timestamps included) instead
    of read back, with their revisions taken in one statement (ADR 61).

    The order :class:`OrganizationSnapshots` gets from locking holds here without a lock: a
    created organization is invisible to other transactions until the writer commits, and an
    updated one is row-locked by the writer's UPDATE until then, so the revision of any later
    snapshot of it is taken after this one's commit.
    """
    ordered = sorted(written, key=lambda org: org.id)
    revisions = await next_revisions(session, len(ordered))
    return await asyncio.to_thread(
        lambda: [
            organization_state(outbox, org, revision)
            for org, revision in zip(ordered, revisions, strict=True)
        ]
    )


def organization_source(outbox: Outbox) -> StateSource:
    return StateSource(ORGANIZATIONS, changed_organizations, OrganizationSnapshots(outbox))


class EmployeeSnapshots:
    """Reads employees (never their password) for their state records."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        wanted = await _lock(session, employees, ids)
        c = employees.c
        rows = (
            await session.execute(
                select(
                    c.id,
                    c.version,
                    c.email,
                    c.name,
                    c.roles,
                    c.directions,
                    c.manager_id,
                    c.active,
                    c.created_at,
                    c.updated_at,
                    next_revision().label("revision"),
                )
                .where(c.id.in_(wanted))
                .order_by(c.id)
            )
        ).all()
        return [
            self.outbox.envelope(
                "directory.employee.state",
                EmployeeState(
                    employee_id=row.id,
                    version=row.version,
                    revision=row.revision,
                    email=row.email,
                    name=row.name,
                    roles=list(row.roles),
                    directions=list(row.directions),
                    manager_id=row.manager_id,
                    active=row.active,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                ),
                aggregate_id=str(row.id),
                directions=list(row.directions),
            )
            for row in rows
        ]


def changed_employees(envelope: Envelope) -> list[str]:
    """The employee an event of the employees topic changes (none for a direction)."""
    found = envelope.payload.get("employee_id")
    return [found] if found else []


def employee_source(outbox: Outbox) -> StateSource:
    return StateSource(EMPLOYEES, changed_employees, EmployeeSnapshots(outbox))


def changed_persons(envelope: Envelope) -> list[str]:
    """The persons an event of the persons topic changes (a merge: both; an employment: its
    person)."""
    payload = envelope.payload
    if envelope.type == "directory.person.merged":
        return [payload["survivor_id"], payload["merged_id"]]
    found = payload.get("person_id")
    return [found] if found else []


def merge_survivors(envelope: Envelope) -> list[str]:
    """An organization merge moves the other's employments to the survivor."""
    if envelope.type == "directory.organization.merged":
        return [envelope.payload["survivor_id"]]
    return []


class PersonSnapshots:
    """Reads persons and their live employments for their state records.

    ``lock=False`` reads without locking the persons (after an organization merge, which holds
    the moved employments but not their persons: locking them there would deadlock with a
    person merge of one of them, which locks the person first and then its employments).
    """

    def __init__(self, outbox: Outbox, *, lock: bool = True) -> None:
        self.outbox = outbox
        self.lock = lock

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        if self.lock:
            wanted = await _lock(session, persons, ids)
        else:
            wanted = sorted({uuid.UUID(str(value)) for value in ids})
        rows = (
            await session.execute(
                select(
                    persons,
                    person_blocked_expr().label("blocked"),
                    next_revision().label("revision"),
                )
                .where(persons.c.id.in_(wanted))
                .order_by(persons.c.id)
            )
        ).all()
        jobs: dict[uuid.UUID, list[EmploymentState]] = {}
        e = employments.c
        for job in (
            await session.execute(
                select(employments)
                .where(e.person_id.in_(wanted), e.deleted_at.is_(None))
                .order_by(e.created_at, e.id)
            )
        ).all():
            jobs.setdefault(job.person_id, []).append(
                EmploymentState(
                    employment_id=job.id,
                    organization_id=job.organization_id,
                    version=job.version,
                    position=job.position,
                    department=job.department,
                    phones=job.phones,
                    emails=list(job.emails),
                    since=job.since,
                    until=job.until,
                )
            )
        envelopes = []
        for row in rows:
            person = Person.model_validate(row, from_attributes=True, context=STORED)
            envelopes.append(
                self.outbox.envelope(
                    "directory.person.state",
                    PersonState(
                        person_id=person.id,
                        version=person.version,
                        revision=row.revision,
                        **person.model_dump(mode="json", include=set(PERSON_FIELDS)),
                        attributes=person.attributes,
                        employments=jobs.get(person.id, []),
                        blocked=person.blocked,
                        deleted=person.deleted_at is not None,
                        merged_into=person.merged_into,
                        created_at=person.created_at,
                        updated_at=person.updated_at,
                    ),
                    aggregate_id=str(person.id),
                    directions=person.directions,
                )
            )
        return envelopes


class PersonsAtOrganizations:
    """The state records of the persons employed at organizations (after a merge moved
    employments to them)."""

    def __init__(self, persons_of: PersonSnapshots) -> None:
        self.persons_of = persons_of

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        orgs = [uuid.UUID(str(value)) for value in ids]
        employed = (
            await session.scalars(
                select(employments.c.person_id)
                .where(employments.c.organization_id.in_(orgs), employments.c.deleted_at.is_(None))
                .distinct()
            )
        ).all()
        return await self.persons_of(session, [str(person) for person in employed])


def person_sources(outbox: Outbox) -> list[StateSource]:
    unlocked = PersonSnapshots(outbox, lock=False)
    return [
        StateSource(PERSONS, changed_persons, PersonSnapshots(outbox)),
        StateSource(ORGANIZATIONS, merge_survivors, PersonsAtOrganizations(unlocked)),
    ]


# --- directions, lists and their members, the unwanted register -------------------------------


def changed_directions(envelope: Envelope) -> list[str]:
    """The direction an event of the employees topic changes (keyed by its code)."""
    if envelope.type == "directory.direction.changed":
        return [envelope.payload["code"]]
    return []


class DirectionSnapshots:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, codes: Sequence[str]) -> list[Envelope]:
        wanted = await _lock(session, directions, codes, key="code")
        c = directions.c
        rows = (
            await session.execute(
                select(directions, next_revision().label("revision"))
                .where(c.code.in_(wanted))
                .order_by(c.code)
            )
        ).all()
        return [
            self.outbox.envelope(
                "directory.direction.state",
                DirectionState(
                    code=row.code,
                    version=row.version,
                    revision=row.revision,
                    name=row.name,
                    description=row.description,
                    archived=row.archived,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                ),
                aggregate_id=row.code,
                directions=[row.code],
            )
            for row in rows
        ]


def direction_source(outbox: Outbox) -> StateSource:
    return StateSource(EMPLOYEES, changed_directions, DirectionSnapshots(outbox))


def changed_lists(envelope: Envelope) -> list[str]:
    """The list a list event changes (its membership changes do not change the list)."""
    if envelope.type == "directory.list.changed":
        return [envelope.payload["list_id"]]
    return []


class ListSnapshots:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        wanted = await _lock(session, organization_lists, ids)
        c = organization_lists.c
        rows = (
            await session.execute(
                select(organization_lists, next_revision().label("revision"))
                .where(c.id.in_(wanted))
                .order_by(c.id)
            )
        ).all()
        return [
            self.outbox.envelope(
                "directory.list.state",
                OrganizationListState(
                    list_id=row.id,
                    version=row.version,
                    revision=row.revision,
                    name=row.name,
                    description=row.description,
                    kind=row.kind,
                    filter=row.filter,
                    directions=list(row.directions),
                    deleted=row.deleted_at is not None,
                    created_at=row.created_at,
                    updated_at=row.updated_at,
                ),
                aggregate_id=str(row.id),
                directions=list(row.directions),
            )
            for row in rows
        ]


def list_source(outbox: Outbox) -> StateSource:
    return StateSource(ORGANIZATIONS, changed_lists, ListSnapshots(outbox))


def changed_members(envelope: Envelope) -> list[str]:
    """The memberships (``<list_id>:<organization_id>``) a membership change adds or removes."""
    if envelope.type != "directory.list.membership_changed":
        return []
    payload = envelope.payload
    return [f"{payload['list_id']}:{org}" for org in [*payload["added"], *payload["removed"]]]


def membership_key() -> ColumnElement[str]:
    """SQL: a membership's key on the state topic, ``<list_id>:<organization_id>``."""
    m = organization_list_members.c
    return func.concat(cast(m.list_id, Text), ":", cast(m.organization_id, Text))


def _membership(key: str) -> tuple[uuid.UUID, uuid.UUID]:
    list_id, organization_id = key.split(":")
    return uuid.UUID(list_id), uuid.UUID(organization_id)


class MemberSnapshots:
    """A record per membership that exists, a tombstone per one that no longer does.

    The memberships of a list change under the list's lock (and a merge's under the
    organizations'), so their revisions are taken in commit order."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(
        self, session: AsyncSession, keys: Sequence[str]
    ) -> list[Envelope | Tombstone]:
        wanted = sorted({_membership(key) for key in keys})
        m = organization_list_members.c
        rows = (
            await session.execute(
                select(
                    organization_list_members,
                    organization_lists.c.directions,
                    next_revision().label("revision"),
                )
                .join(organization_lists, organization_lists.c.id == m.list_id)
                .where(tuple_(m.list_id, m.organization_id).in_(wanted))
                .order_by(m.list_id, m.organization_id)
            )
        ).all()
        found = {(row.list_id, row.organization_id) for row in rows}
        gone = [key for key in wanted if key not in found]
        revisions = await next_revisions(session, len(gone))
        staged: list[Envelope | Tombstone] = [
            self.outbox.envelope(
                "directory.list_member.state",
                ListMemberState(
                    list_id=row.list_id,
                    organization_id=row.organization_id,
                    revision=row.revision,
                    added_by=row.added_by,
                    added_at=row.added_at,
                ),
                aggregate_id=f"{row.list_id}:{row.organization_id}",
                directions=list(row.directions),
            )
            for row in rows
        ]
        lists = {list_id for list_id, _ in gone}
        directions_of = {
            row.id: tuple(row.directions)
            for row in (
                await session.execute(
                    select(organization_lists.c.id, organization_lists.c.directions).where(
                        organization_lists.c.id.in_(lists)
                    )
                )
            ).all()
        }
        staged += [
            Tombstone(
                LIST_MEMBERS_STATE, f"{list_id}:{org}", 1, revision, directions_of.get(list_id, ())
            )
            for (list_id, org), revision in zip(gone, revisions, strict=True)
        ]
        return staged


def merged_pairs(envelope: Envelope) -> list[str]:
    """An organization merge: ``<survivor_id>:<merged_id>``."""
    if envelope.type == "directory.organization.merged":
        return [f"{envelope.payload['survivor_id']}:{envelope.payload['merged_id']}"]
    return []


class MembersAfterMerge:
    """After an organization merge: the survivor's memberships (it took the merged one's) and a
    tombstone for the merged one's in each of those lists (it has none left)."""

    def __init__(self, members: MemberSnapshots) -> None:
        self.members = members

    async def __call__(
        self, session: AsyncSession, pairs: Sequence[str]
    ) -> list[Envelope | Tombstone]:
        keys: list[str] = []
        m = organization_list_members.c
        for pair in pairs:
            survivor, merged = pair.split(":")
            lists = await session.scalars(
                select(m.list_id).where(m.organization_id == uuid.UUID(survivor))
            )
            for list_id in lists:
                keys += [f"{list_id}:{survivor}", f"{list_id}:{merged}"]
        return await self.members(session, keys) if keys else []


def member_sources(outbox: Outbox) -> list[StateSource]:
    members = MemberSnapshots(outbox)
    return [
        StateSource(ORGANIZATIONS, changed_members, members),
        StateSource(ORGANIZATIONS, merged_pairs, MembersAfterMerge(members)),
    ]


def changed_entries(envelope: Envelope) -> list[str]:
    if envelope.type == "directory.register.changed":
        return [envelope.payload["entry_id"]]
    return []


class EntrySnapshots:
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        wanted = await _lock(session, unwanted_register, ids)
        c = unwanted_register.c
        rows = (
            await session.execute(
                select(unwanted_register, next_revision().label("revision"))
                .where(c.id.in_(wanted))
                .order_by(c.id)
            )
        ).all()
        return [
            self.outbox.envelope(
                "directory.register.state",
                RegisterEntryState(
                    entry_id=row.id,
                    version=1 if row.removed_at is None else 2,
                    revision=row.revision,
                    basis=row.basis,
                    organization_id=row.organization_id,
                    person_id=row.person_id,
                    inn=row.inn,
                    email_domain=row.email_domain,
                    reason=row.reason,
                    decided_by=row.decided_by,
                    active=row.removed_at is None,
                    created_at=row.created_at,
                    removed_at=row.removed_at,
                    removal_reason=row.removal_reason,
                ),
                aggregate_id=str(row.id),
            )
            for row in rows
        ]


class EntriesOf:
    """The entries naming these records (after a merge moved the other's to the survivor)."""

    def __init__(self, entries: EntrySnapshots, column: Column[Any]) -> None:
        self.entries = entries
        self.column = column

    async def __call__(self, session: AsyncSession, ids: Sequence[str]) -> list[Envelope]:
        named = await session.scalars(
            select(unwanted_register.c.id).where(
                self.column.in_([uuid.UUID(str(value)) for value in ids])
            )
        )
        found = [str(entry) for entry in named]
        return await self.entries(session, found) if found else []


def person_merge_survivors(envelope: Envelope) -> list[str]:
    if envelope.type == "directory.person.merged":
        return [envelope.payload["survivor_id"]]
    return []


def register_sources(outbox: Outbox) -> list[StateSource]:
    entries = EntrySnapshots(outbox)
    return [
        StateSource(ORGANIZATIONS, changed_entries, entries),
        StateSource(
            ORGANIZATIONS, merge_survivors, EntriesOf(entries, unwanted_register.c.organization_id)
        ),
        StateSource(
            PERSONS, person_merge_survivors, EntriesOf(entries, unwanted_register.c.person_id)
        ),
    ]
