"""Pipelines and stages: what a valid pipeline is and how its stages change (no I/O)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from clientele_shared.values import Directions, Label, Labels, Name, Note
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

StageKind = Literal["open", "won", "lost", "monitoring"]
CLOSING_KINDS = frozenset({"won", "lost"})
MAX_STAGES = 30

REQUIRABLE_FIELDS = frozenset(
    {
        "amount",
        "currency",
        "expected_close_date",
        "person_ids",
        "primary_person_id",
        "responsible_employee_id",
        "products",
        "tags",
        "source.channel",
        "source.campaign_id",
    }
)
_CUSTOM_FIELD = re.compile(r"^custom_fields\.[A-Za-z0-9_]{1,64}$")


def _requirable(value: str) -> str:
    if value not in REQUIRABLE_FIELDS and not _CUSTOM_FIELD.match(value):
        raise PydanticCustomError(
            "unknown_field",
            "not a deal field a stage can require: one of {fields} or custom_fields.<key>",
            {"fields": ", ".join(sorted(REQUIRABLE_FIELDS))},
        )
    return value


RequiredField = Annotated[str, Field(max_length=100), AfterValidator(_requirable)]
Color = Annotated[str, Field(pattern=r"^#[0-9a-fA-F]{6}$")]


class Objection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objection: Note
    answer: Note


class Script(BaseModel):
    """What the responsible employee says at this stage, and answers to objections."""

    model_config = ConfigDict(extra="forbid")

    text: Note | None = None
    objections: list[Objection] = Field(default_factory=list, max_length=30)


def _distinct_items(items: list[str]) -> list[str]:
    if len({item.casefold() for item in items}) != len(items):
        raise PydanticCustomError("duplicate", "checklist items must be distinct")
    return items


Checklist = Annotated[list[Label], Field(max_length=30), AfterValidator(_distinct_items)]


class StageDraft(BaseModel):
    """A stage as a client describes it, with its playbook: ``required_fields`` (the deal
    fields that must be filled before a deal leaves the stage), a ``checklist`` ticked on each
    deal and a call ``script``."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    kind: StageKind = "open"
    probability: int = Field(default=0, ge=0, le=100, description="chance to win, percent")
    expected_days: int | None = Field(default=None, ge=0, le=3650)
    color: Color | None = None
    required_fields: list[RequiredField] = Field(default_factory=list, max_length=30)
    checklist: Checklist = Field(default_factory=list)
    script: Script | None = None


class Stage(StageDraft):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    position: int
    archived: bool = False


class PipelineDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    directions: Directions
    stages: list[StageDraft] = Field(min_length=2, max_length=MAX_STAGES)
    lost_reasons: Labels = Field(default_factory=list, description="the reasons a deal is lost")

    @model_validator(mode="after")
    def _stages(self) -> PipelineDraft:
        check_stage_names([stage.name for stage in self.stages])
        if not any(stage.kind in ("open", "monitoring") for stage in self.stages):
            raise ValueError("a pipeline needs a stage where deals start (open or monitoring)")
        return self


class PipelinePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    directions: Directions | None = None
    lost_reasons: list[Label] | None = Field(default=None, max_length=50)

    @model_validator(mode="after")
    def _not_null(self) -> PipelinePatch:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class Pipeline(BaseModel):
    id: uuid.UUID
    name: str
    directions: list[str]
    lost_reasons: list[str]
    stages: list[Stage]
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def stage(self, stage_id: uuid.UUID) -> Stage | None:
        return next((stage for stage in self.stages if stage.id == stage_id), None)

    def first_stage(self) -> Stage:
        """Where a deal starts unless told otherwise: the first open stage in order."""
        return next(s for s in self.stages if s.kind in ("open", "monitoring") and not s.archived)


class StageRejected(ValueError):
    """A stage change the pipeline's rules refuse (answered as a 422)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def check_stage_names(names: list[str]) -> None:
    if len({name.casefold() for name in names}) != len(names):
        raise StageRejected("name", "stage names must be distinct within a pipeline")
    if len(names) > MAX_STAGES:
        raise StageRejected("stages", f"a pipeline has at most {MAX_STAGES} stages")
