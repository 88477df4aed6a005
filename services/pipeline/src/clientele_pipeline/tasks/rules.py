"""What a valid task is, how a patch changes it, its reminder and its calendar (no I/O)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from clientele_shared.values import Direction, Note, Title, clean_text
from icalendar import Calendar, Event
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

Priority = Literal["low", "normal", "high", "urgent"]
TaskStatus = Literal["open", "done"]
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
ICAL_PRIORITY = {"urgent": 1, "high": 3, "normal": 5, "low": 9}
"""RFC 5545 PRIORITY: 1 highest, 9 lowest."""
FEED_EVENT = timedelta(minutes=30)
"""A task shows in calendars as the half hour before its deadline."""


def _plausible(value: datetime) -> datetime:
    if not EARLIEST <= value < LATEST:
        raise PydanticCustomError("date_range", "must lie between 1900 and 2199")
    return value.astimezone(UTC)


Deadline = Annotated[AwareDatetime, AfterValidator(_plausible)]
Text = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20_000),
    AfterValidator(clean_text),
]


class TaskFields(BaseModel):
    """The fields of a task a person edits."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Text | None = None
    deadline: Deadline = Field(description="timezone-aware (an offset or Z)")
    priority: Priority = "normal"


class TaskDraft(TaskFields):
    """A new task for an employee, about a deal and/or an organization (the deal's client when
    only the deal is given); ``directions`` default to the deal's, else to the caller's among
    the organization's, else to the caller's."""

    assignee_employee_id: uuid.UUID
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    directions: list[Direction] | None = Field(default=None, min_length=1, max_length=50)


class TaskPatch(BaseModel):
    """A JSON merge patch of a task's fields: fields present are set, ``null`` clears."""

    model_config = ConfigDict(extra="forbid")

    title: Any = None
    description: Any = None
    deadline: Any = None
    priority: Any = None


class Completion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Text


class Reassignment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_employee_id: uuid.UUID
    reason: Note | None = None


class Task(TaskFields):
    """A task as the API shows it."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    version: int
    status: TaskStatus
    assignee_employee_id: uuid.UUID
    deal_id: uuid.UUID | None
    organization_id: uuid.UUID | None
    directions: list[str]
    result: str | None
    completed_at: datetime | None
    completed_by: str | None
    overdue_at: datetime | None
    """When the open task was found past its deadline (cleared by a new deadline)."""
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    deleted_at: datetime | None = Field(default=None, exclude=True)

    def fields(self) -> TaskFields:
        return TaskFields.model_validate(self.model_dump(include=set(TaskFields.model_fields)))


def patched_fields(current: TaskFields, patch: TaskPatch) -> TaskFields:
    """The task's fields after a merge patch; raises ``ValidationError`` when invalid."""
    values = current.model_dump()
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        values[name] = ("normal" if name == "priority" else None) if value is None else value
    return TaskFields.model_validate(values)


def changes_between(old: TaskFields, new: TaskFields) -> dict[str, dict[str, Any]]:
    """``{field: {old, new}}`` in the API's JSON shape, for the fields that differ."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return {
        name: {"old": before[name], "new": after[name]}
        for name in TaskFields.model_fields
        if before[name] != after[name]
    }


def reminder_time(deadline: datetime, lead: timedelta, now: datetime) -> datetime | None:
    """When to remind the assignee: ``lead`` before the deadline, at once when that moment has
    passed but the deadline has not; never for a task already due (the overdue notice is)."""
    if deadline <= now:
        return None
    return max(deadline - lead, now)


def reminder_id(task_id: uuid.UUID) -> uuid.UUID:
    """One reminder per task: a new deadline or assignee replaces it, completing cancels it."""
    return uuid.uuid5(task_id, "task-reminder")


def overdue_key(task_id: uuid.UUID, deadline: datetime) -> str:
    """The notifier's idempotency key of one overdue notice (one per deadline)."""
    return f"task-overdue:{task_id}:{deadline.isoformat()}"


def tasks_calendar(employee_id: uuid.UUID, tasks: Iterable[Task], now: datetime) -> bytes:
    """An iCalendar feed of one employee's open tasks: each the half hour before its deadline
    (UID stable per task, SEQUENCE its version, so calendar clients update moved tasks)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Clientele//pipeline tasks//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", f"Clientele tasks ({employee_id})")
    for task in tasks:
        event = Event()
        event.add("uid", f"task-{task.id}@clientele")
        event.add("dtstamp", now)
        event.add("dtstart", task.deadline - FEED_EVENT)
        event.add("dtend", task.deadline)
        event.add("summary", task.title)
        if task.description:
            event.add("description", task.description)
        event.add("priority", ICAL_PRIORITY[task.priority])
        event.add("sequence", task.version - 1)
        event.add("last-modified", task.updated_at)
        event.add("status", "CONFIRMED")
        if task.deadline <= now:
            event.add("categories", ["OVERDUE"])
        calendar.add_component(event)
    return bytes(calendar.to_ical())
