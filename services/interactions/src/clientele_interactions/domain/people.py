"""Persons and their positions as interactions keeps them, folded from the directory's events
(pure: no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    EmploymentChanged,
    PersonCreated,
    PersonUpdated,
)
from pydantic import BaseModel

PERSON_FIELDS = (
    "last_name",
    "first_name",
    "middle_name",
    "last_name_latin",
    "first_name_latin",
    "emails",
    "phones",
    "directions",
)


def normalize_emails(values: Iterable[Any]) -> list[str]:
    """E-mail addresses in lower case, without duplicates (matching is case-insensitive)."""
    return list(dict.fromkeys(str(value).strip().lower() for value in values if value))


def _normalized(name: str, value: Any) -> Any:
    if name == "emails":
        return normalize_emails(value or [])
    if name == "directions":
        return sorted(set(value or []))
    if name == "phones":
        return list(value or [])
    return value


def person_values(event: PersonCreated) -> dict[str, Any]:
    return {
        "person_id": event.person_id,
        **{name: _normalized(name, getattr(event, name)) for name in PERSON_FIELDS},
        "blocked": event.blocked,
        "deleted": False,
        "version": event.version,
    }


def person_changes(event: PersonUpdated) -> dict[str, Any]:
    """The columns an update changes (fields interactions does not keep are ignored)."""
    values = {
        name: _normalized(name, change.new)
        for name, change in event.changes.items()
        if name in PERSON_FIELDS
    }
    return {**values, "blocked": event.blocked}


def employment_values(event: EmploymentChanged) -> dict[str, Any]:
    return {
        "employment_id": event.employment_id,
        "person_id": event.person_id,
        "organization_id": event.organization_id,
        "position": event.position,
        "department": event.department,
        "emails": normalize_emails(event.emails),
        "phones": list(event.phones),
        "since": event.since,
        "until": event.until,
        "deleted": event.change == "deleted",
        "version": event.version,
    }


def full_name(row: Mapping[str, Any]) -> str:
    """ "Last First Middle" as Russian business use writes it; the Latin name when there is no
    Cyrillic one."""
    parts = [row.get("last_name"), row.get("first_name"), row.get("middle_name")]
    name = " ".join(part for part in parts if part)
    if not name:
        latin = [row.get("first_name_latin"), row.get("last_name_latin")]
        name = " ".join(part for part in latin if part)
    return name or "—"


def employment_active(since: date | None, until: date | None, today: date) -> bool:
    return (since is None or since <= today) and (until is None or until >= today)


class Person(BaseModel):
    """A person at a client, as the summary and the address book show them."""

    person_id: uuid.UUID
    full_name: str
    last_name: str | None = None
    first_name: str | None = None
    middle_name: str | None = None
    position: str | None = None
    department: str | None = None
    emails: list[str]
    phones: list[dict[str, Any]]
    organization_id: uuid.UUID | None = None
    organization_name: str | None = None
    blocked: bool = False
    """In the unwanted counterparty register."""


EMPLOYEE_FIELDS = ("name", "email", "roles", "directions", "manager_id", "active")


def employee_values(event: EmployeeCreated) -> dict[str, Any]:
    return {
        "employee_id": event.employee_id,
        "name": event.name,
        "email": event.email.strip().lower(),
        "roles": sorted(set(event.roles)),
        "directions": sorted(set(event.directions)),
        "manager_id": event.manager_id,
        "active": event.active,
        "version": event.version,
    }


def employee_changes(event: EmployeeUpdated) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, change in event.changes.items():
        if name not in EMPLOYEE_FIELDS:
            continue
        value = change.new
        if name == "email" and value is not None:
            value = str(value).strip().lower()
        elif name in ("roles", "directions"):
            value = sorted(set(value or []))
        values[name] = value
    return values
