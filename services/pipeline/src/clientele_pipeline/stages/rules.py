"""Stage changes: a patch, a new stage, a new order (no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.values import Name
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clientele_pipeline.pipelines.rules import (
    MAX_STAGES,
    Color,
    RequiredField,
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
    archived: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> StagePatch:
        for name in ("name", "kind", "probability", "required_fields", "archived"):
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
    changes = {}
    for name in patch.model_fields_set:
        old, new = getattr(stage, name), getattr(patch, name)
        if old != new:
            changes[name] = {"old": old, "new": new}
    return changes


def check_reorder(current: list[Stage], wanted: list[uuid.UUID]) -> None:
    """A new order names every stage of the pipeline exactly once."""
    if len(set(wanted)) != len(wanted) or set(wanted) != {stage.id for stage in current}:
        raise StageRejected("stage_ids", "name every stage of the pipeline exactly once")
