"""Events the pipeline service publishes on ``clientele.pipeline.tasks``.

Every event of one task is keyed by the task id, so a task's events arrive in order. Times are
timezone-aware (UTC on the wire). ``changed`` carries only the changed fields, each with its old
and new value, in the same JSON shape as the pipeline's API.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import TASKS

TaskPriority = Literal["low", "normal", "high", "urgent"]
TaskStatus = Literal["open", "done"]


class TaskSnapshot(Payload):
    """A task as it is after the change the event reports."""

    task_id: uuid.UUID
    version: int = Field(ge=1)
    title: str
    description: str | None = None
    deadline: AwareDatetime
    assignee_employee_id: uuid.UUID
    priority: TaskPriority
    status: TaskStatus
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    directions: list[str] = Field(default_factory=list)


class TaskCreated(TaskSnapshot):
    """A new task (the whole record), by a person or by an automation rule."""


class TaskChanged(Payload):
    """Changed fields of a task (title, description, deadline, priority), old and new."""

    task_id: uuid.UUID
    version: int = Field(ge=1)
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    changes: dict[str, FieldChange]


class TaskCompleted(Payload):
    """A task was done, with its result."""

    task_id: uuid.UUID
    version: int = Field(ge=1)
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    assignee_employee_id: uuid.UUID
    result: str
    completed_at: AwareDatetime
    overdue: bool
    """Whether it was completed after its deadline."""


class TaskReassigned(Payload):
    """A task moved from one employee to another (by hand, or with a client's hand-over)."""

    task_id: uuid.UUID
    version: int = Field(ge=1)
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    from_employee_id: uuid.UUID
    to_employee_id: uuid.UUID
    reason: str | None = None
    handover_id: uuid.UUID | None = None


class TaskOverdue(Payload):
    """An open task passed its deadline (once per deadline)."""

    task_id: uuid.UUID
    version: int = Field(ge=1)
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    assignee_employee_id: uuid.UUID
    title: str
    deadline: AwareDatetime
    detected_at: AwareDatetime


TASK_CREATED = "pipeline.task.created"
TASK_CHANGED = "pipeline.task.changed"
TASK_COMPLETED = "pipeline.task.completed"
TASK_REASSIGNED = "pipeline.task.reassigned"
TASK_OVERDUE = "pipeline.task.overdue"

EVENTS = [
    EventSpec(TASK_CREATED, 1, TASKS, TaskCreated),
    EventSpec(TASK_CHANGED, 1, TASKS, TaskChanged),
    EventSpec(TASK_COMPLETED, 1, TASKS, TaskCompleted),
    EventSpec(TASK_REASSIGNED, 1, TASKS, TaskReassigned),
    EventSpec(TASK_OVERDUE, 1, TASKS, TaskOverdue),
]
