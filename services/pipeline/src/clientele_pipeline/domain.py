"""Pipeline domain: a pipeline is an ordered list of distinct stages (no I/O)."""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

StageName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Direction = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class PipelineDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    stages: list[StageName] = Field(min_length=2, max_length=30)
    directions: list[Direction] = Field(min_length=1, max_length=50)

    @field_validator("stages")
    @classmethod
    def _distinct(cls, stages: list[str]) -> list[str]:
        if len({stage.casefold() for stage in stages}) != len(stages):
            raise ValueError("stage names must be distinct")
        return stages


class Pipeline(PipelineDraft):
    id: uuid.UUID
