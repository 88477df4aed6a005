"""Stage changes: a patch, a new stage, a new order (no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.values import Name
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clientele_pipeline.pipelines.rules import (
    MAX_STAGES,
    Checklist,
    Color,
    RequiredField,
    Script,
    Stage,
    StageDraft,
    StageKind,
    StageRejected,
)


class StagePatch(BaseModel):
    """Changed fields of a stage (fields present are set, ``null`` clears an optional one)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    kind: StageKind | None = None
    probability: int | None = Field(default=None, ge=0, le=100)
    expected_days: int | None = Field(default=None, ge=0, le=3650)
    color: Color | None = None
    required_fields: list[RequiredField] | None = Field(default=None, max_length=30)
    checklist: Checklist | None = None
    script: Script | None = None
    archived: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> StagePatch:
        for name in ("name", "kind", "probability", "required_fields", "checklist", "archived"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class NewStage(StageDraft):
    """A stage added to a pipeline; ``position`` (from 0) defaults to the end."""

    position: int | None = Field(default=None, ge=0, le=MAX_STAGES)


class StageOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_STAGES)


def stage_changes(stage: Stage, patch: StagePatch) -> dict[str, dict[str, Any]]:
    """``{field: {old, new}}`` of the fields a patch really changes."""
    before, after = stage.model_dump(mode="json"), patch.model_dump(mode="json")
    return {
        name: {"old": before[name], "new": after[name]}
        for name in patch.model_fields_set
        if before[name] != after[name]
    }


def check_reorder(current: list[Stage], wanted: list[uuid.UUID]) -> None:
    """A new order names every stage of the pipeline exactly once."""
    if len(set(wanted)) != len(wanted) or set(wanted) != {stage.id for stage in current}:
        raise StageRejected("stage_ids", "name every stage of the pipeline exactly once")
