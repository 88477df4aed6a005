"""What a valid marketing event is and how its status moves (no I/O)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Literal

from clientele_shared.events.schemas.campaigns import EventKindCode
from clientele_shared.values import Directions, Name, Title
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

CampaignStatus = Literal["planned", "preparing", "running", "done", "cancelled"]

TRANSITIONS: dict[str, frozenset[str]] = {
    "planned": frozenset({"preparing", "running", "cancelled"}),
    "preparing": frozenset({"planned", "running", "cancelled"}),
    "running": frozenset({"done", "cancelled"}),
    "done": frozenset({"running"}),
    "cancelled": frozenset({"planned"}),
}
"""The statuses a marketing event may go to from each status (``done`` reopens to
``running`` to correct a mistake; a cancelled one is planned again)."""

DEFAULT_STAGES = ("Подготовка", "Приглашения", "Мероприятие", "Постобработка")
"""Preparation, invitations, the event, follow-up: every new event's stages unless told."""

MAX_GOALS = 20
EDITABLE = (
    "kind",
    "title",
    "status",
    "planned_start",
    "planned_end",
    "actual_start",
    "actual_end",
    "place",
    "responsible_employee_id",
    "directions",
    "goals",
    "registration_open",
)


class Stage(BaseModel):
    id: uuid.UUID
    position: int
    name: str
    due_date: date | None = None


class CampaignFields(BaseModel):
    """The editable fields of a marketing event, checked together."""

    model_config = ConfigDict(extra="forbid")

    kind: EventKindCode = Field(
        description="a code of the kinds catalogue (GET /v1/event-kinds), not archived"
    )
    title: Title
    status: CampaignStatus = "planned"
    planned_start: AwareDatetime
    planned_end: AwareDatetime
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    place: Title | None = None
    responsible_employee_id: uuid.UUID | None = None
    directions: Directions
    goals: list[Title] = Field(default_factory=list, max_length=MAX_GOALS)
    registration_open: bool = Field(
        default=False, description="whether the public registration form accepts registrants"
    )

    @model_validator(mode="after")
    def _dates(self) -> CampaignFields:
        if self.planned_end < self.planned_start:
            raise ValueError("planned_end is before planned_start")
        if self.actual_start and self.actual_end and self.actual_end < self.actual_start:
            raise ValueError("actual_end is before actual_start")
        if self.actual_end is not None and self.actual_start is None:
            raise ValueError("actual_end needs actual_start")
        return self


class CampaignDraft(CampaignFields):
    stages: list[Name] = Field(
        default_factory=lambda: list(DEFAULT_STAGES), min_length=1, max_length=20
    )

    @model_validator(mode="after")
    def _stage_names(self) -> CampaignDraft:
        if len({name.casefold() for name in self.stages}) != len(self.stages):
            raise ValueError("stage names must be distinct within a marketing event")
        return self


class CampaignPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: EventKindCode | None = None
    title: Title | None = None
    status: CampaignStatus | None = None
    planned_start: AwareDatetime | None = None
    planned_end: AwareDatetime | None = None
    actual_start: AwareDatetime | None = None
    actual_end: AwareDatetime | None = None
    place: Title | None = None
    responsible_employee_id: uuid.UUID | None = None
    directions: Directions | None = None
    goals: list[Title] | None = Field(default=None, max_length=MAX_GOALS)
    registration_open: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> CampaignPatch:
        required = ("kind", "title", "status", "planned_start", "planned_end", "directions")
        for name in (*required, "registration_open"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Campaign(CampaignFields):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    kind_name_ru: str = Field(description="the kind's Russian name")
    kind_name_en: str = Field(description="the kind's English name")
    stages: list[Stage]
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    deleted_at: datetime | None = None

    def fields(self) -> CampaignFields:
        return CampaignFields.model_validate(self.model_dump(include=set(EDITABLE)))

    def stage(self, stage_id: uuid.UUID) -> Stage | None:
        return next((stage for stage in self.stages if stage.id == stage_id), None)


def patched(current: CampaignFields, patch: CampaignPatch) -> CampaignFields:
    """The fields after a patch, checked together (a ValidationError names what is wrong)."""
    return CampaignFields.model_validate(
        {**current.model_dump(), **patch.model_dump(exclude_unset=True)}
    )


def status_allowed(old: str, new: str) -> bool:
    return old == new or new in TRANSITIONS[old]


def json_fields(fields: CampaignFields) -> dict[str, Any]:
    """The fields in their API's JSON shape (audit entries and events)."""
    return fields.model_dump(mode="json")
