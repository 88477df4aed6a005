"""Envelopes of the events the directory publishes (staged through the outbox by the API).

Envelope ``directions`` are the subject's directions; when a change moves an organization between
directions, the event carries both the old and the new ones, so a subscriber filtering by
direction also learns that a record left its view. ``aggregate_id`` is the entity's id.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    DirectionChanged,
    EmployeeCreated,
    EmployeeUpdated,
    EmploymentChanged,
    ListChanged,
    ListMembershipChanged,
    MovedEmployment,
    OrganizationBlocked,
    OrganizationCreatedV2,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationUnblocked,
    OrganizationUpdated,
    PersonBlocked,
    PersonCreated,
    PersonDeleted,
    PersonMerged,
    PersonRestored,
    PersonUnblocked,
    PersonUpdated,
    RegisterBasis,
    RegisterEntryChanged,
)

from clientele_directory.directions.rules import DirectionRecord
from clientele_directory.employees.rules import Employee
from clientele_directory.lists.rules import OrganizationList
from clientele_directory.organizations.rules import ORGANIZATION_FIELDS, Organization
from clientele_directory.persons.rules import Employment, Person
from clientele_directory.register.rules import RegisterEntry


def created_payload(org_id: uuid.UUID, values: Mapping[str, Any], blocked: bool) -> dict[str, Any]:
    """The payload :func:`organization_created` makes of a new organization, from its
    ``storage_values`` (each field's JSON value) without a model (ADR 70: a bulk writer's)."""
    return {
        "organization_id": org_id,
        **{name: values[name] for name in ORGANIZATION_FIELDS},
        "version": 1,
        "blocked": blocked,
        "attributes": values["attributes"],
    }


def organization_created(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    """The whole record: every user-settable field, custom attributes and the blocked flag."""
    return outbox.envelope(
        "directory.organization.created",
        OrganizationCreatedV2(
            organization_id=org.id,
            **org.fields(),
            version=org.version,
            blocked=org.blocked,
            attributes=org.attributes,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_updated(
    outbox: Outbox,
    org: Organization,
    changes: dict[str, Any],
    actor: Actor,
    *,
    previous_directions: list[str],
) -> Envelope:
    return outbox.envelope(
        "directory.organization.updated",
        OrganizationUpdated(
            organization_id=org.id,
            version=org.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
            blocked=org.blocked,
        ),
        aggregate_id=str(org.id),
        directions=sorted({*org.directions, *previous_directions}),
        actor=actor,
    )


def organization_deleted(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    return outbox.envelope(
        "directory.organization.deleted",
        OrganizationDeleted(organization_id=org.id, version=org.version, blocked=org.blocked),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_merged(
    outbox: Outbox,
    survivor: Organization,
    merged: Organization,
    changes: dict[str, Any],
    actor: Actor,
) -> Envelope:
    """Keyed by the survivor (ordered with its updates); directions of both records."""
    return outbox.envelope(
        "directory.organization.merged",
        OrganizationMerged(
            survivor_id=survivor.id,
            merged_id=merged.id,
            survivor_version=survivor.version,
            merged_version=merged.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
            blocked=survivor.blocked,
        ),
        aggregate_id=str(survivor.id),
        directions=sorted({*survivor.directions, *merged.directions}),
        actor=actor,
    )


def organization_restored(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    return outbox.envelope(
        "directory.organization.restored",
        OrganizationRestored(organization_id=org.id, version=org.version, blocked=org.blocked),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_blocked(
    outbox: Outbox,
    org: Organization,
    actor: Actor,
    *,
    entry_id: Any,
    basis: str,
    reason: str,
    decided_by: str,
) -> Envelope:
    return outbox.envelope(
        "directory.organization.blocked",
        OrganizationBlocked(
            organization_id=org.id,
            entry_id=entry_id,
            basis=cast(RegisterBasis, basis),
            reason=reason,
            decided_by=decided_by,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def organization_unblocked(
    outbox: Outbox, org: Organization, actor: Actor, *, entry_id: Any = None
) -> Envelope:
    return outbox.envelope(
        "directory.organization.unblocked",
        OrganizationUnblocked(organization_id=org.id, entry_id=entry_id),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )


def person_created(
    outbox: Outbox, person: Person, actor: Actor, *, directions: list[str]
) -> Envelope:
    fields = person.fields()
    return outbox.envelope(
        "directory.person.created",
        PersonCreated(
            person_id=person.id,
            version=person.version,
            last_name=person.last_name,
            first_name=person.first_name,
            middle_name=person.middle_name,
            last_name_latin=person.last_name_latin,
            first_name_latin=person.first_name_latin,
            birthday=person.birthday,
            phones=fields["phones"],
            emails=person.emails,
            consent=person.consent.model_dump(),
            directions=person.directions,
            blocked=person.blocked,
            attributes=person.attributes,
        ),
        aggregate_id=str(person.id),
        directions=directions,
        actor=actor,
    )


def person_updated(
    outbox: Outbox,
    person: Person,
    changes: dict[str, Any],
    actor: Actor,
    *,
    directions: list[str],
) -> Envelope:
    return outbox.envelope(
        "directory.person.updated",
        PersonUpdated(
            person_id=person.id,
            version=person.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
            blocked=person.blocked,
        ),
        aggregate_id=str(person.id),
        directions=directions,
        actor=actor,
    )


def person_deleted(
    outbox: Outbox, person: Person, actor: Actor, *, directions: list[str]
) -> Envelope:
    return outbox.envelope(
        "directory.person.deleted",
        PersonDeleted(person_id=person.id, version=person.version),
        aggregate_id=str(person.id),
        directions=directions,
        actor=actor,
    )


def person_merged(
    outbox: Outbox,
    survivor: Person,
    merged: Person,
    changes: dict[str, Any],
    employments: list[MovedEmployment],
    actor: Actor,
    *,
    directions: list[str],
) -> Envelope:
    """Keyed by the survivor (ordered with its updates); ``directions`` of both persons."""
    return outbox.envelope(
        "directory.person.merged",
        PersonMerged(
            survivor_id=survivor.id,
            merged_id=merged.id,
            survivor_version=survivor.version,
            merged_version=merged.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
            employments=employments,
            blocked=survivor.blocked,
        ),
        aggregate_id=str(survivor.id),
        directions=directions,
        actor=actor,
    )


def person_restored(
    outbox: Outbox, person: Person, actor: Actor, *, directions: list[str]
) -> Envelope:
    return outbox.envelope(
        "directory.person.restored",
        PersonRestored(person_id=person.id, version=person.version, blocked=person.blocked),
        aggregate_id=str(person.id),
        directions=directions,
        actor=actor,
    )


def employment_changed(
    outbox: Outbox,
    employment: Employment,
    change: str,
    changes: dict[str, Any],
    actor: Actor,
    *,
    directions: list[str],
) -> Envelope:
    fields = employment.fields()
    return outbox.envelope(
        "directory.employment.changed",
        EmploymentChanged(
            employment_id=employment.id,
            person_id=employment.person_id,
            organization_id=employment.organization_id,
            change=change,
            version=employment.version,
            position=employment.position,
            department=employment.department,
            phones=fields["phones"],
            emails=employment.emails,
            since=employment.since,
            until=employment.until,
            changes={name: FieldChange(**value) for name, value in changes.items()},
        ),
        aggregate_id=str(employment.person_id),
        directions=directions,
        actor=actor,
    )


def person_blocked(
    outbox: Outbox,
    person_id: uuid.UUID,
    actor: Actor,
    *,
    directions: list[str],
    entry_id: uuid.UUID,
    basis: str,
    reason: str,
    decided_by: str,
) -> Envelope:
    return outbox.envelope(
        "directory.person.blocked",
        PersonBlocked(
            person_id=person_id,
            entry_id=entry_id,
            basis=cast(RegisterBasis, basis),
            reason=reason,
            decided_by=decided_by,
        ),
        aggregate_id=str(person_id),
        directions=directions,
        actor=actor,
    )


def person_unblocked(
    outbox: Outbox,
    person_id: uuid.UUID,
    actor: Actor,
    *,
    directions: list[str],
    entry_id: uuid.UUID | None = None,
) -> Envelope:
    return outbox.envelope(
        "directory.person.unblocked",
        PersonUnblocked(person_id=person_id, entry_id=entry_id),
        aggregate_id=str(person_id),
        directions=directions,
        actor=actor,
    )


def employee_created(outbox: Outbox, employee: Employee, actor: Actor) -> Envelope:
    return outbox.envelope(
        "directory.employee.created",
        EmployeeCreated(
            employee_id=employee.id,
            version=employee.version,
            email=employee.email,
            name=employee.name,
            roles=employee.roles,
            directions=employee.directions,
            manager_id=employee.manager_id,
            active=employee.active,
        ),
        aggregate_id=str(employee.id),
        directions=employee.directions,
        actor=actor,
    )


def employee_updated(
    outbox: Outbox,
    employee: Employee,
    changes: dict[str, Any],
    actor: Actor,
    *,
    previous_directions: list[str],
) -> Envelope:
    return outbox.envelope(
        "directory.employee.updated",
        EmployeeUpdated(
            employee_id=employee.id,
            version=employee.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
        ),
        aggregate_id=str(employee.id),
        directions=sorted({*employee.directions, *previous_directions}),
        actor=actor,
    )


def direction_changed(
    outbox: Outbox, direction: DirectionRecord, changes: dict[str, Any], actor: Actor
) -> Envelope:
    return outbox.envelope(
        "directory.direction.changed",
        DirectionChanged(
            code=direction.code,
            name=direction.name,
            archived=direction.archived,
            version=direction.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
        ),
        aggregate_id=f"direction:{direction.code}",
        directions=[direction.code],
        actor=actor,
    )


def list_membership_changed(
    outbox: Outbox,
    found: OrganizationList,
    actor: Actor,
    *,
    added: list[uuid.UUID] | None = None,
    removed: list[uuid.UUID] | None = None,
) -> Envelope:
    return outbox.envelope(
        "directory.list.membership_changed",
        ListMembershipChanged(
            list_id=found.id, list_name=found.name, added=added or [], removed=removed or []
        ),
        aggregate_id=f"list:{found.id}",
        directions=found.directions,
        actor=actor,
    )


def list_changed(
    outbox: Outbox,
    found: OrganizationList,
    change: str,
    actor: Actor,
    changes: dict[str, Any] | None = None,
) -> Envelope:
    """A list created, updated or deleted (its whole record follows on the state topic)."""
    return outbox.envelope(
        "directory.list.changed",
        ListChanged(
            list_id=found.id,
            change=cast(Any, change),
            version=found.version,
            name=found.name,
            kind=found.kind.value,
            directions=found.directions,
            changes={name: FieldChange(**value) for name, value in (changes or {}).items()},
        ),
        aggregate_id=f"list:{found.id}",
        directions=found.directions,
        actor=actor,
    )


def register_changed(outbox: Outbox, entry: RegisterEntry, actor: Actor) -> Envelope:
    """A register entry listed or removed (its whole record follows on the state topic)."""
    return outbox.envelope(
        "directory.register.changed",
        RegisterEntryChanged(
            entry_id=entry.id,
            change="removed" if entry.removed_at is not None else "listed",
            basis=entry.basis.value,
        ),
        aggregate_id=f"register:{entry.id}",
        actor=actor,
    )
