"""Events the interactions service publishes on ``clientele.interactions.interactions``.

Every event of one interaction is keyed by the interaction id, so its events arrive in order;
``responsibility.handed_over`` is keyed by the organization id. Times are timezone-aware (UTC on
the wire). Notes and attachments are not carried: they stay in the interactions service.
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import INTERACTION_LOG

InteractionKind = Literal["call", "email", "meeting", "message", "other"]
InteractionDirection = Literal["in", "out"]
InteractionStatus = Literal["planned", "done", "cancelled"]


class InteractionSnapshot(Payload):
    """An interaction as it is after the change the event reports."""

    interaction_id: uuid.UUID
    organization_id: uuid.UUID
    version: int = Field(ge=1)
    kind: InteractionKind
    direction: InteractionDirection
    status: InteractionStatus
    occurred_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    duration_seconds: int | None = Field(default=None, ge=0)
    person_ids: list[uuid.UUID] = Field(default_factory=list)
    responsible_employee_id: uuid.UUID | None = None
    subject: str
    result: str | None = None
    deal_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    follows_id: uuid.UUID | None = None
    """The interaction whose result led to this planned one."""
    source: str = "api"


class InteractionLogged(InteractionSnapshot):
    """A contact that happened was recorded (status ``done``)."""


class InteractionPlanned(InteractionSnapshot):
    """A contact was planned (status ``planned``, with a due time and a responsible employee)."""


class InteractionCompleted(InteractionSnapshot):
    """A planned contact happened and its result was recorded."""

    next_interaction_id: uuid.UUID | None = None
    """The planned contact created in the same call, when one was."""


class InteractionRescheduled(Payload):
    """A planned contact's due time moved."""

    interaction_id: uuid.UUID
    organization_id: uuid.UUID
    version: int = Field(ge=1)
    previous_due_at: AwareDatetime
    due_at: AwareDatetime
    responsible_employee_id: uuid.UUID | None = None


class InteractionUpdated(Payload):
    """Other fields of an interaction changed (each with its old and new value)."""

    interaction_id: uuid.UUID
    organization_id: uuid.UUID
    version: int = Field(ge=1)
    changes: dict[str, FieldChange]


class InteractionCancelled(Payload):
    """A planned contact will not take place."""

    interaction_id: uuid.UUID
    organization_id: uuid.UUID
    version: int = Field(ge=1)
    reason: str | None = None


class InteractionOverdue(Payload):
    """A planned contact passed its due time without a result (emitted once per due time)."""

    interaction_id: uuid.UUID
    organization_id: uuid.UUID
    due_at: AwareDatetime
    detected_at: AwareDatetime
    responsible_employee_id: uuid.UUID | None = None


class InteractionHandedOver(Payload):
    """An open planned contact moved from one employee to another."""

    interaction_id: uuid.UUID
    organization_id: uuid.UUID
    version: int = Field(ge=1)
    handover_id: uuid.UUID
    from_employee_id: uuid.UUID
    to_employee_id: uuid.UUID


class ResponsibilityHandedOver(Payload):
    """One employee's responsibility for a client passed to another (keyed by organization).

    The directory may follow it by changing the organization's responsible employee.
    """

    handover_id: uuid.UUID
    organization_id: uuid.UUID
    from_employee_id: uuid.UUID
    to_employee_id: uuid.UUID
    interactions_moved: int = Field(ge=0)
    reason: str | None = None


INTERACTION_LOGGED = "interactions.interaction.logged"
INTERACTION_PLANNED = "interactions.interaction.planned"
INTERACTION_RESCHEDULED = "interactions.interaction.rescheduled"
INTERACTION_UPDATED = "interactions.interaction.updated"
INTERACTION_COMPLETED = "interactions.interaction.completed"
INTERACTION_CANCELLED = "interactions.interaction.cancelled"
INTERACTION_OVERDUE = "interactions.interaction.overdue"
INTERACTION_HANDED_OVER = "interactions.interaction.handed_over"
RESPONSIBILITY_HANDED_OVER = "interactions.responsibility.handed_over"

EVENTS = [
    EventSpec(INTERACTION_LOGGED, 1, INTERACTION_LOG, InteractionLogged),
    EventSpec(INTERACTION_PLANNED, 1, INTERACTION_LOG, InteractionPlanned),
    EventSpec(INTERACTION_RESCHEDULED, 1, INTERACTION_LOG, InteractionRescheduled),
    EventSpec(INTERACTION_UPDATED, 1, INTERACTION_LOG, InteractionUpdated),
    EventSpec(INTERACTION_COMPLETED, 1, INTERACTION_LOG, InteractionCompleted),
    EventSpec(INTERACTION_CANCELLED, 1, INTERACTION_LOG, InteractionCancelled),
    EventSpec(INTERACTION_OVERDUE, 1, INTERACTION_LOG, InteractionOverdue),
    EventSpec(INTERACTION_HANDED_OVER, 1, INTERACTION_LOG, InteractionHandedOver),
    EventSpec(RESPONSIBILITY_HANDED_OVER, 1, INTERACTION_LOG, ResponsibilityHandedOver),
]
