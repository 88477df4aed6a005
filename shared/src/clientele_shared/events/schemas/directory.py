"""Events the directory publishes."""

import uuid

from pydantic import Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import ORGANIZATIONS


class OrganizationCreated(Payload):
    """A new organization in the directory."""

    organization_id: uuid.UUID
    legal_name: str
    short_name: str | None = None
    inn: str | None = None
    status: str
    directions: list[str] = Field(default_factory=list)


class OrganizationUpdated(Payload):
    """Changed fields of an organization, each with its old and new value."""

    organization_id: uuid.UUID
    version: int
    changes: dict[str, FieldChange]


EVENTS = [
    EventSpec("directory.organization.created", 1, ORGANIZATIONS, OrganizationCreated),
    EventSpec("directory.organization.updated", 1, ORGANIZATIONS, OrganizationUpdated),
]
