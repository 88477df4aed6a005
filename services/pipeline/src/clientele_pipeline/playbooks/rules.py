"""A deal's view of its stage's playbook, and ticking its checklist (no I/O)."""

from __future__ import annotations

import uuid
from typing import Any

from clientele_shared.values import Label
from pydantic import BaseModel, ConfigDict, Field


class Ticks(BaseModel):
    """The items of the current stage's checklist that are done (the others are not)."""

    model_config = ConfigDict(extra="forbid")

    done: list[Label] = Field(max_length=30)


class ChecklistItem(BaseModel):
    item: str
    done: bool


class Playbook(BaseModel):
    """What the deal's stage asks of it: fields to fill before leaving, the checklist with
    this deal's ticks, the call script."""

    stage_id: uuid.UUID
    stage_name: str
    required_fields: list[str]
    missing_fields: list[str]
    checklist: list[ChecklistItem]
    script: dict[str, Any] | None = None


def ticked(checklist: list[str], done: list[str]) -> list[str]:
    """The done items in the checklist's order; ValueError naming items it does not have."""
    unknown = sorted(set(done) - set(checklist))
    if unknown:
        raise ValueError(f"not items of the stage's checklist: {', '.join(unknown)}")
    return [item for item in checklist if item in set(done)]
