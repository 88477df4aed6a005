"""Directions (no I/O): what an administrator sets, what a direction is."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from clientele_directory.values import Direction, LongText, ShortText


def direction_audit_id(code: str) -> uuid.UUID:
    """Directions are keyed by code; the audit trail keys them by this stable UUID."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"clientele:direction:{code}")


class DirectionDraft(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: Direction
    name: ShortText
    description: LongText | None = None


class DirectionPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: ShortText | None = None
    description: LongText | None = None
    archived: bool | None = None


class DirectionRecord(BaseModel):
    code: str
    name: str
    description: str | None = None
    archived: bool = False
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None
