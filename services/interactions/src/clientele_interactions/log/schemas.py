"""The contact log's models: what the API accepts and answers, and what the rules work on."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from clientele_shared.events.schemas.interactions import (
    InteractionDirection,
    InteractionKind,
    InteractionStatus,
)
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

Kind = InteractionKind
Direction = InteractionDirection
Status = InteractionStatus
KINDS: tuple[str, ...] = ("call", "email", "meeting", "message", "other")

MAX_PERSONS = 50
MAX_DURATION = 7 * 24 * 3600


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""Times of contacts outside these bounds are typing errors (0001-01-01 broke the event
schemas and the reminder arithmetic downstream): refused as input."""


def _utc(value: datetime) -> datetime:
    try:
        moment = value.astimezone(UTC)
    except OverflowError:
        moment = EARLIEST - timedelta(days=1)  # refused just below
    if not EARLIEST <= moment < LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year - 1}")
    return moment


def _dedupe(values: list[uuid.UUID]) -> list[uuid.UUID]:
    return list(dict.fromkeys(values))


def _no_controls(value: str) -> str:
    if any(ord(char) < 32 and char not in "\n\r\t" for char in value):
        raise ValueError("control characters are not allowed")
    return value


Moment = Annotated[AwareDatetime, AfterValidator(_utc)]
"""A timezone-aware time (a naive one is refused), kept in UTC."""
Code = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Subject = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_no_controls),
]
Notes = Annotated[str, StringConstraints(max_length=20_000), AfterValidator(_no_controls)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
PersonIds = Annotated[list[uuid.UUID], Field(max_length=MAX_PERSONS), AfterValidator(_dedupe)]
Duration = Annotated[int, Field(ge=0, le=MAX_DURATION)]


class Input(BaseModel):
    """A request body: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NextContact(Input):
    """The planned contact to create together with a result; omitted fields follow the
    interaction the result belongs to."""

    due_at: Moment
    kind: Kind | None = None
    direction: Direction = "out"
    responsible_employee_id: uuid.UUID | None = None
    subject: Subject | None = None
    notes: Notes | None = None
    person_ids: PersonIds | None = None
    duration_seconds: Duration | None = None


class InteractionDraft(Input):
    """A new interaction: one that happened (``done``, the default) or a planned one."""

    organization_id: uuid.UUID
    kind: Kind
    direction: Direction = "out"
    status: Literal["done", "planned"] = "done"
    occurred_at: Moment | None = Field(
        default=None, description="when it happened (done; default now)"
    )
    due_at: Moment | None = Field(default=None, description="when it is due (planned; required)")
    duration_seconds: Duration | None = None
    person_ids: PersonIds = Field(default_factory=list)
    responsible_employee_id: uuid.UUID | None = None
    subject: Subject
    notes: Notes | None = None
    result: Code | None = None
    deal_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None
    next: NextContact | None = Field(
        default=None, description="a planned contact to create in the same call (done only)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> InteractionDraft:
        if self.status == "planned":
            if self.due_at is None:
                raise ValueError("a planned interaction needs due_at")
            if self.responsible_employee_id is None:
                raise ValueError("a planned interaction needs responsible_employee_id")
            for name in ("occurred_at", "result", "next"):
                if getattr(self, name) is not None:
                    raise ValueError(f"a planned interaction takes no {name}")
        elif self.due_at is not None:
            raise ValueError("an interaction that happened takes occurred_at, not due_at")
        return self


class InteractionPatch(Input):
    """A JSON merge patch: fields present are set, ``null`` clears (where a field may be empty).

    ``due_at`` applies to planned interactions (a reschedule), ``occurred_at`` and ``result`` to
    those that happened.
    """

    kind: Kind | None = None
    direction: Direction | None = None
    occurred_at: Moment | None = None
    due_at: Moment | None = None
    duration_seconds: Duration | None = None
    person_ids: PersonIds | None = None
    responsible_employee_id: uuid.UUID | None = None
    subject: Subject | None = None
    notes: Notes | None = None
    result: Code | None = None
    deal_id: uuid.UUID | None = None
    campaign_id: uuid.UUID | None = None


REQUIRED_WHEN_PRESENT = ("kind", "direction", "subject", "person_ids")
"""Patch fields that may be changed but never cleared with ``null``."""


class CompleteRequest(Input):
    """Record the result of a planned contact; ``next`` plans the following one."""

    occurred_at: Moment | None = Field(default=None, description="default now")
    result: Code | None = None
    duration_seconds: Duration | None = None
    notes: Notes | None = None
    person_ids: PersonIds | None = None
    next: NextContact | None = None


class CancelRequest(Input):
    reason: Reason | None = None


class Interaction(BaseModel):
    """One interaction with a client, as the API answers it."""

    id: uuid.UUID
    organization_id: uuid.UUID
    kind: Kind
    direction: Direction
    status: Status
    occurred_at: datetime | None
    due_at: datetime | None
    duration_seconds: int | None
    person_ids: list[uuid.UUID]
    responsible_employee_id: uuid.UUID | None
    subject: str
    notes: str | None
    result: str | None
    deal_id: uuid.UUID | None
    campaign_id: uuid.UUID | None
    follows_id: uuid.UUID | None
    source: str
    overdue_at: datetime | None = None
    cancel_reason: str | None = None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class LoggedInteraction(Interaction):
    """An interaction as reads of the log show it: with the blocked flags of its client and
    participants (the unwanted counterparty register)."""

    client_blocked: bool
    blocked_person_ids: list[uuid.UUID]


class SuggestedNext(BaseModel):
    """The next contact the recorded result suggests (not created unless asked)."""

    kind: Kind
    due_at: datetime
    responsible_employee_id: uuid.UUID | None
    subject: str
    person_ids: list[uuid.UUID]


class LogOutcome(BaseModel):
    """What logging or completing answers: the interaction, the planned follow-up if one was
    created in the same call, otherwise the one the result suggests."""

    interaction: Interaction
    next_planned: Interaction | None = None
    suggested_next: SuggestedNext | None = None


class AuditEntry(BaseModel):
    """One change of an interaction as the audit trail keeps it."""

    id: int
    action: str
    version: int | None
    actor_subject: str
    actor_kind: str
    correlation_id: str
    occurred_at: datetime
    changes: dict[str, Any]
    note: str | None = None
