"""Events the directory publishes.

Organization events are keyed by the organization id; every payload of an organization carries
``blocked`` (listed in the unwanted counterparty register) so consumers can refuse business with
it without asking the directory. Update events carry only the changed fields, each with its old
and new value, in the same JSON shape as the directory's API.
"""

import uuid
from typing import Any, Literal

from pydantic import Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import ORGANIZATIONS


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


class OrganizationUpdated(Payload):
    """Changed fields of an organization, each with its old and new value."""

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


EVENTS = [
    EventSpec("directory.organization.created", 1, ORGANIZATIONS, OrganizationCreated),
    EventSpec("directory.organization.updated", 1, ORGANIZATIONS, OrganizationUpdated),
    EventSpec("directory.organization.deleted", 1, ORGANIZATIONS, OrganizationDeleted),
    EventSpec("directory.organization.restored", 1, ORGANIZATIONS, OrganizationRestored),
    EventSpec("directory.organization.blocked", 1, ORGANIZATIONS, OrganizationBlocked),
    EventSpec("directory.organization.unblocked", 1, ORGANIZATIONS, OrganizationUnblocked),
]
