"""The analytics' answers and the checks of their interval (no I/O).

Periods are calendar periods in the requested time zone (``tz``, default UTC); ``from``/``to``
bound a half-open interval ``[from, to)`` of at most three years.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel

from clientele_interactions.log.rules import Rejected

Period = Literal["day", "week", "month", "quarter", "year"]
MAX_SPAN = timedelta(days=3 * 366)


def checked_interval(since: datetime, until: datetime, tz: str) -> str:
    """The time zone of a valid interval; Rejected (422) for an empty or too long interval or
    an unknown zone."""
    if until <= since:
        raise Rejected(
            [{"loc": ("query", "to"), "msg": "must be after from", "type": "value_error"}]
        )
    if until - since > MAX_SPAN:
        raise Rejected(
            [{"loc": ("query", "to"), "msg": "at most three years", "type": "value_error"}]
        )
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # a folder of zones: OSError
        raise Rejected(
            [{"loc": ("query", "tz"), "msg": "unknown time zone", "type": "value_error"}]
        ) from None
    return tz


class ContactsRow(BaseModel):
    period_start: datetime
    employee_id: uuid.UUID | None
    kind: str
    result: str | None
    contacts: int
    duration_seconds: int


class Totals(BaseModel):
    contacts: int
    organizations: int
    by_kind: dict[str, int]
    by_direction: dict[str, int]


class EmployeeCount(BaseModel):
    employee_id: uuid.UUID | None
    count: int


class PeriodCount(BaseModel):
    period_start: datetime
    count: int


class Overdue(BaseModel):
    now: int
    by_employee: list[EmployeeCount]
    over_time: list[PeriodCount]
    """Contacts that became overdue, per period (by when the worker found them overdue)."""


class Workload(BaseModel):
    employee_id: uuid.UUID | None
    planned: int
    """Meetings due in the interval (whatever became of them)."""
    held: int
    """Meetings that took place in the interval."""
    cancelled: int
    open: int
    """Meetings due in the interval still planned."""


class OrganizationContacts(BaseModel):
    organization_id: uuid.UUID
    legal_name: str
    contacts: int
    last_contact_at: datetime
