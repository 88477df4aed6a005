"""The directory's state topics (ADR 18): the full snapshot of every record a change touches."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from clientele_shared.events.catalog import EMPLOYEES, ORGANIZATIONS, PERSONS
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.directory import (
    EmployeeState,
    EmploymentState,
    OrganizationState,
    PersonState,
)
from clientele_shared.events.state import StateSource, next_revision
from sqlalchemy import Table, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.blocking import organization_blocked_expr, person_blocked_expr
from clientele_directory.organizations.rules import Organization
from clientele_directory.persons.rules import PERSON_FIELDS, Person
from clientele_directory.tables import employees, employments, organizations, persons
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


async def _lock(session: AsyncSession, table: Table, ids: Sequence[str]) -> list[uuid.UUID]:
    """Lock the records in id order before numbering their snapshots: two transactions that
    snapshot one record take revisions in the order they commit, and the second reads what the
    first wrote."""
    wanted = sorted({uuid.UUID(str(value)) for value in ids})
    await session.execute(
        select(table.c.id)
        .where(table.c.id.in_(wanted))
        .order_by(table.c.id)
        .with_for_update(key_share=True)
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
