"""Participants of a marketing event: who they are, their status and outcome (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from clientele_shared.values import Note
from pydantic import BaseModel, ConfigDict, Field, model_validator

ParticipantStatus = Literal[
    "invited", "confirmed", "registered", "attended", "no_show", "cancelled"
]
Refusal = Literal["blocked", "unknown_organization", "unknown_person", "already_added"]
MAX_BULK = 10_000
"""The most participants one request adds, updates or moves."""

OUTCOME_FIELDS = ("loyalty", "partnership_interest", "notes", "follow_up")


class Who(BaseModel):
    """An organization, and optionally one of its persons, to add to an event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organization_id: uuid.UUID
    person_id: uuid.UUID | None = None


class Addition(BaseModel):
    """Participants to add by hand (one) or in bulk (ids), at a stage (the first unless told)."""

    model_config = ConfigDict(extra="forbid")

    participants: list[Who] = Field(min_length=1, max_length=MAX_BULK)
    stage_id: uuid.UUID | None = None
    status: ParticipantStatus = "invited"


class Outcome(BaseModel):
    """What came of a participant: loyalty and interest in partnership (1-5), notes, follow-up."""

    model_config = ConfigDict(extra="forbid")

    loyalty: int | None = Field(default=None, ge=1, le=5)
    partnership_interest: int | None = Field(default=None, ge=1, le=5)
    notes: Note | None = None
    follow_up: bool | None = None


class ParticipantPatch(Outcome):
    """A status and/or outcome change of one participant (fields left out stay as they are)."""

    status: ParticipantStatus | None = None

    @model_validator(mode="after")
    def _something(self) -> ParticipantPatch:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        for name in ("status", "follow_up"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class BulkUpdate(ParticipantPatch):
    """The same status and/or outcome change for many participants of one event."""

    participant_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK)

    @model_validator(mode="after")
    def _something(self) -> BulkUpdate:
        if not self.model_fields_set - {"participant_ids"}:
            raise ValueError("name at least one field to change")
        return self


class Move(BaseModel):
    """Participants moving to another stage of their event (their history keeps the old one)."""

    model_config = ConfigDict(extra="forbid")

    participant_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_BULK)
    to_stage_id: uuid.UUID


class Participant(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    campaign_id: uuid.UUID
    stage_id: uuid.UUID
    organization_id: uuid.UUID
    person_id: uuid.UUID | None = None
    status: ParticipantStatus
    loyalty: int | None = None
    partnership_interest: int | None = None
    notes: str | None = None
    follow_up: bool = False
    client_blocked: bool = False
    version: int
    created_at: datetime
    updated_at: datetime


class Refused(BaseModel):
    organization_id: uuid.UUID
    person_id: uuid.UUID | None = None
    reason: Refusal


class AdditionResult(BaseModel):
    added: list[Participant]
    refused: list[Refused]


class StageHistoryEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    from_stage_id: uuid.UUID | None
    to_stage_id: uuid.UUID
    status: ParticipantStatus
    moved_at: datetime
    actor_subject: str


def unique(entries: list[Who]) -> list[Who]:
    """The entries without repeats, in their order."""
    return list(dict.fromkeys(entries))


def changed_values(current: Participant, patch: ParticipantPatch) -> dict[str, object]:
    """The fields a patch changes (the status and outcome fields it names that differ)."""
    wanted = patch.model_dump(include=patch.model_fields_set - {"participant_ids"})
    return {name: value for name, value in wanted.items() if getattr(current, name) != value}
