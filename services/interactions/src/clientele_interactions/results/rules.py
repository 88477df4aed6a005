"""What a result of an interaction is: the outcomes admins define per kind of contact."""

from __future__ import annotations

from pydantic import BaseModel, Field

from clientele_interactions.log.schemas import Code, Input, Kind, Label


class ResultDefinition(BaseModel):
    """One result an interaction of a kind may have (admin-managed)."""

    kind: Kind
    code: str
    label: str
    position: int
    follow_up_days: int | None
    active: bool
    version: int


class ResultDraft(Input):
    kind: Kind
    code: Code
    label: Label
    position: int = Field(default=0, ge=0, le=10_000)
    follow_up_days: int | None = Field(default=None, ge=0, le=365)
    active: bool = True


class ResultPatch(Input):
    label: Label | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)
    follow_up_days: int | None = Field(default=None, ge=0, le=365)
    active: bool | None = None
