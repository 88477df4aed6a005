"""Events the directory publishes.

Organization events are keyed by the organization id; every payload of an organization carries
``blocked`` (listed in the unwanted counterparty register) so consumers can refuse business with
it without asking the directory. Update events carry only the changed fields, each with its old
and new value, in the same JSON shape as the directory's API. Every change of an organization is
also followed by its full state on the compacted state topic (``OrganizationState``, ADR 18).
"""

import uuid
from datetime import date, datetime
from typing import Any, Literal

from pydantic import Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import (
    DIRECTIONS_STATE,
    EMPLOYEES,
    EMPLOYEES_STATE,
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    PERSONS_STATE,
    REGISTER_STATE,
)


class OrganizationCreated(Payload):
    """A new organization in the directory (a snapshot of its fields)."""

    organization_id: uuid.UUID
    legal_name: str
    short_name: str | None = None
    inn: str | None = None
    status: str
    directions: list[str] = Field(default_factory=list)
    version: int = 1
    country: str | None = None
    kpp: str | None = None
    ogrn: str | None = None
    phones: list[dict[str, Any]] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    industry: str | None = None
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    responsible_employee_id: uuid.UUID | None = None
    blocked: bool = False
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="custom attribute values by key"
    )


class OrganizationCreatedV2(OrganizationCreated):
    """A new organization: the whole record (v1 left out the addresses and foreign tax id)."""

    foreign_tax_id: str | None = None
    legal_address: dict[str, Any] | None = None
    actual_address: dict[str, Any] | None = None
    postal_address: dict[str, Any] | None = None


class OrganizationState(Payload):
    """The whole organization after a change, on the state topic (compacted, keyed by its id).

    Snapshots of one organization are ordered by ``version`` (its ETag; every change of its
    fields) and then ``revision`` (every snapshot: a change of the ``blocked`` flag, which the
    register decides, does not change the version).
    """

    organization_id: uuid.UUID
    version: int
    revision: int
    legal_name: str
    short_name: str | None = None
    country: str | None = None
    inn: str | None = None
    kpp: str | None = None
    ogrn: str | None = None
    foreign_tax_id: str | None = None
    legal_address: dict[str, Any] | None = None
    actual_address: dict[str, Any] | None = None
    postal_address: dict[str, Any] | None = None
    phones: list[dict[str, Any]] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    sites: list[str] = Field(default_factory=list)
    industry: str | None = None
    categories: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    responsible_employee_id: uuid.UUID | None = None
    status: str
    directions: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    blocked: bool = False
    deleted: bool = False
    merged_into: uuid.UUID | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class OrganizationUpdated(Payload):
    """Changed fields of an organization, each with its old and new value; a custom
    attribute's change is named ``attributes.<key>``."""

    organization_id: uuid.UUID
    version: int
    changes: dict[str, FieldChange]
    blocked: bool = False


class OrganizationDeleted(Payload):
    """An organization was soft-deleted (it can be restored)."""

    organization_id: uuid.UUID
    version: int
    blocked: bool = False


class OrganizationRestored(Payload):
    """A soft-deleted organization was restored."""

    organization_id: uuid.UUID
    version: int
    blocked: bool = False


class OrganizationMerged(Payload):
    """Two organizations became one: ``merged_id`` was soft-deleted into ``survivor_id``, which
    took its employments, list memberships and register entries. Consumers re-point whatever
    they keep under ``merged_id`` to ``survivor_id``."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    survivor_version: int
    merged_version: int
    changes: dict[str, FieldChange] = Field(
        default_factory=dict, description="the survivor's fields the merge changed"
    )
    blocked: bool = False


RegisterBasis = Literal["organization", "person", "inn", "email_domain"]


class OrganizationBlocked(Payload):
    """An organization became a match of the unwanted counterparty register."""

    organization_id: uuid.UUID
    entry_id: uuid.UUID
    basis: RegisterBasis
    reason: str
    decided_by: str


class OrganizationUnblocked(Payload):
    """An organization no longer matches any entry of the unwanted counterparty register."""

    organization_id: uuid.UUID
    entry_id: uuid.UUID | None = None


class PersonCreated(Payload):
    """A new contact person (a snapshot; directions are the person's own)."""

    person_id: uuid.UUID
    version: int = 1
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name_latin: str | None = None
    first_name_latin: str | None = None
    birthday: date | None = None
    phones: list[dict[str, Any]] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    consent: dict[str, bool] = Field(default_factory=dict)
    directions: list[str] = Field(default_factory=list)
    blocked: bool = False
    attributes: dict[str, Any] = Field(
        default_factory=dict, description="custom attribute values by key"
    )


class EmploymentState(Payload):
    """A live employment of a person, as part of the person's state."""

    employment_id: uuid.UUID
    organization_id: uuid.UUID
    version: int
    position: str | None = None
    department: str | None = None
    phones: list[dict[str, Any]] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    since: date | None = None
    until: date | None = None


class PersonState(Payload):
    """The whole person with its live employments, on the state topic (compacted, keyed by the
    person id; ordered by ``version``, then ``revision``: an employment change or a register
    block does not change the person's version)."""

    person_id: uuid.UUID
    version: int
    revision: int
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    last_name_latin: str | None = None
    first_name_latin: str | None = None
    birthday: date | None = None
    phones: list[dict[str, Any]] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    consent: dict[str, bool] = Field(default_factory=dict)
    directions: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    employments: list[EmploymentState] = Field(default_factory=list)
    blocked: bool = False
    deleted: bool = False
    merged_into: uuid.UUID | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class PersonUpdated(Payload):
    """Changed fields of a person, each with its old and new value."""

    person_id: uuid.UUID
    version: int
    changes: dict[str, FieldChange]
    blocked: bool = False


class PersonDeleted(Payload):
    person_id: uuid.UUID
    version: int


class PersonRestored(Payload):
    person_id: uuid.UUID
    version: int
    blocked: bool = False


class MovedEmployment(Payload):
    """An employment of the merged person after a person merge: re-pointed to the survivor
    (``employment_id`` kept), or folded into the survivor's own employment at the same
    organization in the same position (``merged_into`` is that employment, ``employment_id``
    was soft-deleted)."""

    employment_id: uuid.UUID
    organization_id: uuid.UUID
    merged_into: uuid.UUID | None = None


class PersonMerged(Payload):
    """Two persons became one: ``merged_id`` was soft-deleted into ``survivor_id``, which took its
    employments (``employments``) and register entries. Consumers re-point whatever they keep
    under ``merged_id`` (and under a folded employment id) to the survivor."""

    survivor_id: uuid.UUID
    merged_id: uuid.UUID
    survivor_version: int
    merged_version: int
    changes: dict[str, FieldChange] = Field(
        default_factory=dict, description="the survivor's fields the merge changed"
    )
    employments: list[MovedEmployment] = Field(default_factory=list)
    blocked: bool = False


class EmploymentChanged(Payload):
    """An employment was created, updated or deleted; keyed by the person.

    Carries the employment as it is now (``position`` ... ``until``) and the changed fields with
    their old and new values.
    """

    employment_id: uuid.UUID
    person_id: uuid.UUID
    organization_id: uuid.UUID
    change: Literal["created", "updated", "deleted"]
    version: int
    position: str | None = None
    department: str | None = None
    phones: list[dict[str, Any]] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    since: date | None = None
    until: date | None = None
    changes: dict[str, FieldChange] = Field(default_factory=dict)


class PersonBlocked(Payload):
    """A person became a match of the unwanted counterparty register."""

    person_id: uuid.UUID
    entry_id: uuid.UUID
    basis: RegisterBasis
    reason: str
    decided_by: str


class PersonUnblocked(Payload):
    """A person no longer matches any entry of the unwanted counterparty register."""

    person_id: uuid.UUID
    entry_id: uuid.UUID | None = None


class EmployeeCreated(Payload):
    """A new employee (user) of the company."""

    employee_id: uuid.UUID
    version: int = 1
    email: str
    name: str
    roles: list[str] = Field(default_factory=list)
    directions: list[str] = Field(default_factory=list)
    manager_id: uuid.UUID | None = None
    active: bool = True


class EmployeeUpdated(Payload):
    """Changed fields of an employee (``active`` false: deactivated), with old and new values."""

    employee_id: uuid.UUID
    version: int
    changes: dict[str, FieldChange]


class EmployeeState(Payload):
    """The whole employee after a change, on the state topic (compacted, keyed by the id;
    ordered by ``version``, then ``revision``)."""

    employee_id: uuid.UUID
    version: int
    revision: int
    email: str
    name: str
    roles: list[str] = Field(default_factory=list)
    directions: list[str] = Field(default_factory=list)
    manager_id: uuid.UUID | None = None
    active: bool = True
    created_at: datetime | None = None
    updated_at: datetime | None = None


class DirectionChanged(Payload):
    """A direction (business line) was created or changed."""

    code: str
    name: str
    archived: bool = False
    version: int
    changes: dict[str, FieldChange] = Field(default_factory=dict)


class ListMembershipChanged(Payload):
    """Organizations joined or left a static list (keyed ``list:<id>``; a large change comes as
    several events of at most 1000 ids each)."""

    list_id: uuid.UUID
    list_name: str
    added: list[uuid.UUID] = Field(default_factory=list)
    removed: list[uuid.UUID] = Field(default_factory=list)


class DirectionState(Payload):
    """The whole direction after a change, on the state topic (compacted, keyed by its code;
    ordered by ``version``, then ``revision``)."""

    code: str
    version: int
    revision: int
    name: str
    description: str | None = None
    archived: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ListChanged(Payload):
    """A list of organizations was created, changed or (soft-)deleted; keyed ``list:<id>`` like
    its membership changes. Its whole record follows on the lists state topic."""

    list_id: uuid.UUID
    change: Literal["created", "updated", "deleted"]
    version: int
    name: str
    kind: Literal["static", "dynamic"]
    directions: list[str] = Field(default_factory=list)
    changes: dict[str, FieldChange] = Field(default_factory=dict)


class OrganizationListState(Payload):
    """The whole list after a change, on the lists state topic (compacted, keyed by its id;
    ordered by ``version``, then ``revision``). A static list's members are on the list
    members state topic, one record each; a dynamic list's members are its ``filter``'s result
    (the directory's search filter, as its API takes it)."""

    list_id: uuid.UUID
    version: int
    revision: int
    name: str
    description: str | None = None
    kind: Literal["static", "dynamic"]
    filter: dict[str, Any] | None = None
    directions: list[str] = Field(default_factory=list)
    deleted: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ListMemberState(Payload):
    """An organization is a member of a static list: one record per membership on the list
    members state topic (compacted, keyed ``<list_id>:<organization_id>``; a list of 100,000
    members is 100,000 small records, not one message over Kafka's size limit). A tombstone on
    the key: the organization left the list. A membership has no fields that change, so
    ``version`` is always 1 and ``revision`` orders the records of one key."""

    list_id: uuid.UUID
    organization_id: uuid.UUID
    version: int = 1
    revision: int
    added_by: str | None = None
    added_at: datetime | None = None


class RegisterEntryChanged(Payload):
    """An entry of the unwanted counterparty register was listed or removed; keyed
    ``register:<entry_id>``. The organizations and persons it blocks or unblocks get their own
    events; the whole entry follows on the register state topic."""

    entry_id: uuid.UUID
    change: Literal["listed", "removed"]
    basis: RegisterBasis


class RegisterEntryState(Payload):
    """The whole register entry after a change, on the register state topic (compacted, keyed
    by the entry id). Entries are never deleted: a removed entry has ``active`` false and
    ``version`` 2 (a listed one 1); ``revision`` orders the records of one entry (a merge moves
    an entry to the survivor without a new version)."""

    entry_id: uuid.UUID
    version: int
    revision: int
    basis: RegisterBasis
    organization_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = None
    inn: str | None = None
    email_domain: str | None = None
    reason: str
    decided_by: str
    active: bool = True
    created_at: datetime | None = None
    removed_at: datetime | None = None
    removal_reason: str | None = None


EVENTS = [
    EventSpec("directory.organization.created", 1, ORGANIZATIONS, OrganizationCreated),
    EventSpec("directory.organization.created", 2, ORGANIZATIONS, OrganizationCreatedV2),
    EventSpec("directory.organization.state", 1, ORGANIZATIONS_STATE, OrganizationState),
    EventSpec("directory.organization.updated", 1, ORGANIZATIONS, OrganizationUpdated),
    EventSpec("directory.organization.deleted", 1, ORGANIZATIONS, OrganizationDeleted),
    EventSpec("directory.organization.restored", 1, ORGANIZATIONS, OrganizationRestored),
    EventSpec("directory.organization.merged", 1, ORGANIZATIONS, OrganizationMerged),
    EventSpec("directory.organization.blocked", 1, ORGANIZATIONS, OrganizationBlocked),
    EventSpec("directory.organization.unblocked", 1, ORGANIZATIONS, OrganizationUnblocked),
    EventSpec("directory.list.membership_changed", 1, ORGANIZATIONS, ListMembershipChanged),
    EventSpec("directory.list.changed", 1, ORGANIZATIONS, ListChanged),
    EventSpec("directory.list.state", 1, LISTS_STATE, OrganizationListState),
    EventSpec("directory.list_member.state", 1, LIST_MEMBERS_STATE, ListMemberState),
    EventSpec("directory.register.changed", 1, ORGANIZATIONS, RegisterEntryChanged),
    EventSpec("directory.register.state", 1, REGISTER_STATE, RegisterEntryState),
    EventSpec("directory.person.created", 1, PERSONS, PersonCreated),
    EventSpec("directory.person.updated", 1, PERSONS, PersonUpdated),
    EventSpec("directory.person.deleted", 1, PERSONS, PersonDeleted),
    EventSpec("directory.person.restored", 1, PERSONS, PersonRestored),
    EventSpec("directory.person.merged", 1, PERSONS, PersonMerged),
    EventSpec("directory.employment.changed", 1, PERSONS, EmploymentChanged),
    EventSpec("directory.person.blocked", 1, PERSONS, PersonBlocked),
    EventSpec("directory.person.unblocked", 1, PERSONS, PersonUnblocked),
    EventSpec("directory.person.state", 1, PERSONS_STATE, PersonState),
    EventSpec("directory.employee.created", 1, EMPLOYEES, EmployeeCreated),
    EventSpec("directory.employee.updated", 1, EMPLOYEES, EmployeeUpdated),
    EventSpec("directory.employee.state", 1, EMPLOYEES_STATE, EmployeeState),
    EventSpec("directory.direction.changed", 1, EMPLOYEES, DirectionChanged),
    EventSpec("directory.direction.state", 1, DIRECTIONS_STATE, DirectionState),
]
