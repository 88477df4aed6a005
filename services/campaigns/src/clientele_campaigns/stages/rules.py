"""How an event's stages change (no I/O)."""

from __future__ import annotations

import uuid
from datetime import date

from clientele_shared.values import Name
from pydantic import BaseModel, ConfigDict, Field, model_validator

from clientele_campaigns.campaigns.rules import Stage

MAX_STAGES = 20


class StageDraft(BaseModel):
    """A new stage: at the end unless ``position`` says where (0 first)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    due_date: date | None = None
    position: int | None = Field(default=None, ge=0, le=MAX_STAGES)


class StagePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    due_date: date | None = None

    @model_validator(mode="after")
    def _something(self) -> StagePatch:
        if not self.model_fields_set:
            raise ValueError("name at least one field to change")
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be null")
        return self


class StageOrder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage_ids: list[uuid.UUID] = Field(min_length=1, max_length=MAX_STAGES)


def name_taken(stages: list[Stage], name: str, but: uuid.UUID | None = None) -> bool:
    return any(s.name.casefold() == name.casefold() and s.id != but for s in stages)


def is_permutation(stages: list[Stage], ids: list[uuid.UUID]) -> bool:
    """Whether ``ids`` names every live stage exactly once."""
    return len(ids) == len(set(ids)) and set(ids) == {stage.id for stage in stages}


def snapshot(stages: list[Stage]) -> list[dict[str, object]]:
    """The stages as the audit trail keeps them."""
    return [stage.model_dump(mode="json", exclude={"position"}) for stage in stages]
