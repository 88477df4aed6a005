"""The directory's organizations, persons and employees as a consuming service keeps them: one
full record per entity and version (read models), how the directory's events fold into them, and
their tables (the same in every service that keeps them).

Each apply step takes a whole record and its version, the shape a compacted state topic
delivers: switching from the change events to snapshots replaces only the folding. A merged
record becomes deleted with ``merged_into`` naming the survivor; what a service's own records
do about it (move to the survivor, hide, flag) is the service's business.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeState,
    EmployeeUpdated,
    OrganizationBlocked,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationState,
    OrganizationUnblocked,
    OrganizationUpdated,
    PersonBlocked,
    PersonCreated,
    PersonDeleted,
    PersonMerged,
    PersonRestored,
    PersonState,
    PersonUnblocked,
    PersonUpdated,
)

# --- records and their folding (no I/O) ------------------------------------------------------


class OrganizationRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    organization_id: uuid.UUID
    legal_name: str
    short_name: str | None = None
    inn: str | None = None
    directions: list[str] = []
    blocked: bool = False
    deleted: bool = False
    merged_into: uuid.UUID | None = None
    version: int


class PersonRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    person_id: uuid.UUID
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    birthday: date | None = None
    directions: list[str] = []
    blocked: bool = False
    deleted: bool = False
    merged_into: uuid.UUID | None = None
    version: int


class EmployeeRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    employee_id: uuid.UUID
    name: str
    email: str
    directions: list[str] = []
    roles: list[str] = []
    active: bool = True
    version: int


ORGANIZATION_FIELDS = ("legal_name", "short_name", "inn", "directions")
PERSON_FIELDS = ("last_name", "first_name", "middle_name", "birthday", "directions")
EMPLOYEE_FIELDS = ("name", "email", "directions", "roles", "active")


def organization_created(event: OrganizationCreated) -> OrganizationRecord:
    return OrganizationRecord(
        organization_id=event.organization_id,
        legal_name=event.legal_name,
        short_name=event.short_name,
        inn=event.inn,
        directions=sorted(set(event.directions)),
        blocked=event.blocked,
        version=event.version,
    )


def organization_updated(
    current: OrganizationRecord, event: OrganizationUpdated
) -> OrganizationRecord:
    changed = {
        name: change.new for name, change in event.changes.items() if name in ORGANIZATION_FIELDS
    }
    if "directions" in changed:
        changed["directions"] = sorted(set(changed["directions"] or []))
    return current.model_copy(
        update={**changed, "blocked": event.blocked, "version": event.version}
    )


def person_created(event: PersonCreated) -> PersonRecord:
    return PersonRecord(
        person_id=event.person_id,
        last_name=event.last_name,
        first_name=event.first_name,
        middle_name=event.middle_name,
        birthday=event.birthday,
        directions=sorted(set(event.directions)),
        blocked=event.blocked,
        version=event.version,
    )


def person_updated(current: PersonRecord, event: PersonUpdated) -> PersonRecord:
    changed = {name: c.new for name, c in event.changes.items() if name in PERSON_FIELDS}
    if "directions" in changed:
        changed["directions"] = sorted(set(changed["directions"] or []))
    if isinstance(changed.get("birthday"), str):  # an event's JSON: an ISO date
        changed["birthday"] = date.fromisoformat(changed["birthday"])
    return current.model_copy(
        update={**changed, "blocked": event.blocked, "version": event.version}
    )


def employee_created(event: EmployeeCreated) -> EmployeeRecord:
    return EmployeeRecord(
        employee_id=event.employee_id,
        name=event.name,
        email=event.email.strip().lower(),
        directions=sorted(set(event.directions)),
        roles=sorted(set(event.roles)),
        active=event.active,
        version=event.version,
    )


def employee_updated(current: EmployeeRecord, event: EmployeeUpdated) -> EmployeeRecord:
    changed = {name: c.new for name, c in event.changes.items() if name in EMPLOYEE_FIELDS}
    for name in ("directions", "roles"):
        if name in changed:
            changed[name] = sorted(set(changed[name] or []))
    return current.model_copy(update={**changed, "version": event.version})


def organization_of_state(state: OrganizationState) -> OrganizationRecord:
    """The record of an organization's state snapshot (the whole organization)."""
    return OrganizationRecord(
        organization_id=state.organization_id,
        legal_name=state.legal_name,
        short_name=state.short_name,
        inn=state.inn,
        directions=sorted(set(state.directions)),
        blocked=state.blocked,
        deleted=state.deleted,
        merged_into=state.merged_into,
        version=state.version,
    )


def person_of_state(state: PersonState) -> PersonRecord:
    return PersonRecord(
        person_id=state.person_id,
        last_name=state.last_name,
        first_name=state.first_name,
        middle_name=state.middle_name,
        birthday=state.birthday,
        directions=sorted(set(state.directions)),
        blocked=state.blocked,
        deleted=state.deleted,
        merged_into=state.merged_into,
        version=state.version,
    )


def employee_of_state(state: EmployeeState) -> EmployeeRecord:
    return EmployeeRecord(
        employee_id=state.employee_id,
        name=state.name,
        email=state.email.strip().lower(),
        directions=sorted(set(state.directions)),
        roles=sorted(set(state.roles)),
        active=state.active,
        version=state.version,
    )


# --- tables ----------------------------------------------------------------------------------


def _record_columns() -> list[Column[Any]]:
    return [
        Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
        Column("blocked", Boolean, nullable=False, server_default=text("false")),
        Column("deleted", Boolean, nullable=False, server_default=text("false")),
        Column("merged_into", Uuid),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


@dataclass(frozen=True)
class DirectoryTables:
    organizations: Table
    persons: Table
    employees: Table

    def may_name(
        self, principal: Principal, organization_id: Any, person_id: Any = None
    ) -> ColumnElement[bool]:
        """SQL condition: a record of the service's own that names these ids may be shown to
        ``principal`` with them: neither is held by the read models in directions the
        principal does not see (an id no read model holds tells nothing of another direction:
        the caller gave it, or it is gone)."""
        named = [(self.organizations, "organization_id", organization_id)]
        if person_id is not None:
            named.append((self.persons, "person_id", person_id))
        return ~or_(
            *(
                select(table.c[key])
                .where(table.c[key] == value, ~visible_to(principal, table.c.directions))
                .exists()
                for table, key, value in named
            )
        )


def directory_tables(
    metadata: MetaData, *, birthdays: bool = False, employee_roles: bool = False
) -> DirectoryTables:
    """The read models' tables in a service's metadata (persons' birthdays and employees' roles
    kept only by a service that asks: a record's fields its table lacks are not written)."""
    organizations = Table(
        "organizations",
        metadata,
        Column("organization_id", Uuid, primary_key=True),
        Column("legal_name", String(500), nullable=False),
        Column("short_name", String(500)),
        Column("inn", String(12)),
        *_record_columns(),
        Index("ix_organizations_inn", "inn"),
    )
    persons = Table(
        "persons",
        metadata,
        Column("person_id", Uuid, primary_key=True),
        Column("last_name", String(200)),
        Column("first_name", String(200)),
        Column("middle_name", String(200)),
        *([Column("birthday", Date)] if birthdays else []),
        *_record_columns(),
    )
    employees = Table(
        "employees",
        metadata,
        Column("employee_id", Uuid, primary_key=True),
        Column("name", String(500), nullable=False),
        Column("email", String(320), nullable=False),
        Column("directions", ARRAY(String(64)), nullable=False, server_default=text("'{}'")),
        *(
            [Column("roles", ARRAY(String(64)), nullable=False, server_default=text("'{}'"))]
            if employee_roles
            else []
        ),
        Column("active", Boolean, nullable=False, server_default=text("true")),
        Column("version", Integer, nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )
    return DirectoryTables(organizations, persons, employees)


# --- reading and applying --------------------------------------------------------------------


def _key(table: Table) -> str:
    return str(table.primary_key.columns.values()[0].name)


async def _upsert(session: AsyncSession, table: Table, record: BaseModel) -> bool:
    """Write a whole record unless a newer version is already stored (an equal version is
    written again: version-less events such as blocking carry the current one); whether it
    was written (the stored record is then ``record``)."""
    values = {name: value for name, value in record.model_dump().items() if name in table.c}
    stmt = insert(table).values(**values)
    written = await session.scalar(
        stmt.on_conflict_do_update(
            index_elements=[_key(table)],
            set_={
                **{k: stmt.excluded[k] for k in values if k != _key(table)},
                "updated_at": func.now(),
            },
            where=table.c.version <= stmt.excluded.version,
        ).returning(table.c[_key(table)])
    )
    return written is not None


def any_of(column: Any, ids: Iterable[uuid.UUID]) -> Any:
    """``column = ANY(:ids)``: one array parameter however many ids (an IN list binds one
    parameter each, at most 32,767 a statement, and plans slower)."""
    return column == func.any(bindparam(None, sorted(set(ids)), type_=ARRAY(Uuid)))


async def _load_many(
    session: AsyncSession, table: Table, ids: Iterable[uuid.UUID], *, lock: bool = False
) -> list[dict[str, Any]]:
    """The records of ``ids`` in id order."""
    wanted = set(ids)
    if not wanted:
        return []
    key = table.c[_key(table)]
    stmt = select(table).where(any_of(key, wanted)).order_by(key)
    if lock:
        stmt = stmt.with_for_update()
    return [dict(row) for row in (await session.execute(stmt)).mappings()]


@dataclass(frozen=True)
class References:
    """Records of the three read models a record refers to, by id (those found)."""

    organizations: dict[uuid.UUID, OrganizationRecord]
    persons: dict[uuid.UUID, PersonRecord]
    employees: dict[uuid.UUID, EmployeeRecord]


@dataclass(frozen=True)
class DirectoryReadModels:
    """The read models of one service: look-ups, and the one apply step of each."""

    tables: DirectoryTables

    async def organizations_of(
        self, session: AsyncSession, ids: Iterable[uuid.UUID], *, lock: bool = False
    ) -> dict[uuid.UUID, OrganizationRecord]:
        rows = await _load_many(session, self.tables.organizations, ids, lock=lock)
        return {row["organization_id"]: OrganizationRecord.model_construct(**row) for row in rows}

    async def organization(
        self, session: AsyncSession, organization_id: uuid.UUID, *, lock: bool = False
    ) -> OrganizationRecord | None:
        found = await self.organizations_of(session, [organization_id], lock=lock)
        return found.get(organization_id)

    async def persons_of(
        self, session: AsyncSession, ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, PersonRecord]:
        rows = await _load_many(session, self.tables.persons, ids)
        return {row["person_id"]: PersonRecord.model_construct(**row) for row in rows}

    async def employee(
        self, session: AsyncSession, employee_id: uuid.UUID
    ) -> EmployeeRecord | None:
        rows = await _load_many(session, self.tables.employees, [employee_id])
        return EmployeeRecord.model_validate(rows[0]) if rows else None

    async def references(
        self,
        session: AsyncSession,
        *,
        organizations: Iterable[uuid.UUID] = (),
        persons: Iterable[uuid.UUID] = (),
        employees: Iterable[uuid.UUID] = (),
    ) -> References:
        """The records of ``organizations``, ``persons`` and ``employees`` in one statement
        (one round trip for a record's references, ADR 53)."""
        found = []
        for table, ids in (
            (self.tables.organizations, organizations),
            (self.tables.persons, persons),
            (self.tables.employees, employees),
        ):
            rows = select(func.json_agg(table.table_valued())).where(
                any_of(table.c[_key(table)], ids)
            )
            found.append(type_coerce(rows.scalar_subquery(), JSONB).label(table.name))
        row = (await session.execute(select(*found))).one()
        orgs, people, staff = (value or [] for value in row)
        return References(
            organizations={
                record.organization_id: record
                for record in map(OrganizationRecord.model_validate, orgs)
            },
            persons={
                record.person_id: record for record in map(PersonRecord.model_validate, people)
            },
            employees={
                record.employee_id: record for record in map(EmployeeRecord.model_validate, staff)
            },
        )

    async def apply_organization(self, session: AsyncSession, record: OrganizationRecord) -> bool:
        """The one write of the organizations read model: a whole record at its version;
        whether it was written (an older record is not)."""
        return await _upsert(session, self.tables.organizations, record)

    async def apply_person(self, session: AsyncSession, record: PersonRecord) -> bool:
        return await _upsert(session, self.tables.persons, record)

    async def apply_employee(self, session: AsyncSession, record: EmployeeRecord) -> bool:
        return await _upsert(session, self.tables.employees, record)

    async def organization_records(
        self, session: AsyncSession, payload: BaseModel
    ) -> list[OrganizationRecord]:
        """The whole records an organization event leads to (none when it says nothing the read
        model keeps, or names an organization not seen yet); a state snapshot is one whole
        record (ADR 18)."""
        if isinstance(payload, OrganizationState):
            return [organization_of_state(payload)]
        if isinstance(payload, OrganizationCreated):
            return [organization_created(payload)]
        if isinstance(payload, OrganizationMerged):
            # both locked in one statement, in id order like every batch's rows (ADR 59)
            both = await self.organizations_of(
                session, [payload.merged_id, payload.survivor_id], lock=True
            )
            merged = both.get(payload.merged_id)
            tombstone = OrganizationRecord(
                organization_id=payload.merged_id, legal_name="", version=payload.merged_version
            )
            records = [
                (merged or tombstone).model_copy(
                    update={
                        "deleted": True,
                        "merged_into": payload.survivor_id,
                        "version": max(payload.merged_version, merged.version if merged else 0),
                    }
                )
            ]
            survivor = both.get(payload.survivor_id)
            if survivor is not None:
                changes = OrganizationUpdated(
                    organization_id=payload.survivor_id,
                    version=payload.survivor_version,
                    changes=payload.changes,
                    blocked=payload.blocked,
                )
                records.append(organization_updated(survivor, changes))
            return records
        organization_id = getattr(payload, "organization_id", None)
        if organization_id is None:
            return []
        current = await self.organization(session, organization_id, lock=True)
        if current is None:
            return []
        if isinstance(payload, OrganizationUpdated):
            return [organization_updated(current, payload)]
        if isinstance(payload, OrganizationDeleted | OrganizationRestored):
            deleted = isinstance(payload, OrganizationDeleted)
            update = {"deleted": deleted, "blocked": payload.blocked, "version": payload.version}
            return [current.model_copy(update=update)]
        if isinstance(payload, OrganizationBlocked | OrganizationUnblocked):
            blocked = isinstance(payload, OrganizationBlocked)
            return [current.model_copy(update={"blocked": blocked})]
        return []

    async def person_records(self, session: AsyncSession, payload: BaseModel) -> list[PersonRecord]:
        """The whole records a person event leads to (employments are not kept)."""
        if isinstance(payload, PersonState):
            return [person_of_state(payload)]
        if isinstance(payload, PersonCreated):
            return [person_created(payload)]
        if isinstance(payload, PersonMerged):
            rows = await self.persons_of(session, [payload.merged_id])
            merged = rows.get(payload.merged_id) or PersonRecord(
                person_id=payload.merged_id, version=payload.merged_version
            )
            return [
                merged.model_copy(
                    update={
                        "deleted": True,
                        "merged_into": payload.survivor_id,
                        "version": max(payload.merged_version, merged.version),
                    }
                )
            ]
        person_id = getattr(payload, "person_id", None)
        found = await self.persons_of(session, [person_id]) if person_id else {}
        current = found.get(person_id) if person_id else None
        if current is None:
            return []
        if isinstance(payload, PersonUpdated):
            return [person_updated(current, payload)]
        if isinstance(payload, PersonDeleted):
            return [current.model_copy(update={"deleted": True, "version": payload.version})]
        if isinstance(payload, PersonRestored):
            update = {"deleted": False, "blocked": payload.blocked, "version": payload.version}
            return [current.model_copy(update=update)]
        if isinstance(payload, PersonBlocked | PersonUnblocked):
            return [current.model_copy(update={"blocked": isinstance(payload, PersonBlocked)})]
        return []

    async def employee_records(
        self, session: AsyncSession, payload: BaseModel
    ) -> list[EmployeeRecord]:
        if isinstance(payload, EmployeeState):
            return [employee_of_state(payload)]
        if isinstance(payload, EmployeeCreated):
            return [employee_created(payload)]
        if isinstance(payload, EmployeeUpdated):
            current = await self.employee(session, payload.employee_id)
            return [employee_updated(current, payload)] if current else []
        return []
