"""Read-model records: one full snapshot per organization, person and employee, and how the
directory's events fold into them (no I/O).

Each apply step takes a whole record and its version, the shape a compacted state topic
delivers: switching from the change events to snapshots replaces only the folding.
"""

from __future__ import annotations

import uuid

from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    OrganizationCreated,
    OrganizationUpdated,
    PersonCreated,
    PersonUpdated,
)
from pydantic import BaseModel, ConfigDict


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
    active: bool = True
    version: int


ORGANIZATION_FIELDS = ("legal_name", "short_name", "inn", "directions")
PERSON_FIELDS = ("last_name", "first_name", "middle_name", "directions")
EMPLOYEE_FIELDS = ("name", "email", "directions", "active")


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
        directions=sorted(set(event.directions)),
        blocked=event.blocked,
        version=event.version,
    )


def person_updated(current: PersonRecord, event: PersonUpdated) -> PersonRecord:
    changed = {name: c.new for name, c in event.changes.items() if name in PERSON_FIELDS}
    if "directions" in changed:
        changed["directions"] = sorted(set(changed["directions"] or []))
    return current.model_copy(
        update={**changed, "blocked": event.blocked, "version": event.version}
    )


def employee_created(event: EmployeeCreated) -> EmployeeRecord:
    return EmployeeRecord(
        employee_id=event.employee_id,
        name=event.name,
        email=event.email.strip().lower(),
        directions=sorted(set(event.directions)),
        active=event.active,
        version=event.version,
    )


def employee_updated(current: EmployeeRecord, event: EmployeeUpdated) -> EmployeeRecord:
    changed = {name: c.new for name, c in event.changes.items() if name in EMPLOYEE_FIELDS}
    if "directions" in changed:
        changed["directions"] = sorted(set(changed["directions"] or []))
    return current.model_copy(update={**changed, "version": event.version})
