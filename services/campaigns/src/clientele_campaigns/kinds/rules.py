"""What a kind of marketing event is and what an administrator sets (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime

from clientele_shared.events.schemas.campaigns import EventKindCode
from clientele_shared.values import Name
from pydantic import BaseModel, ConfigDict, model_validator


def kind_audit_id(code: str) -> uuid.UUID:
    """Kinds are keyed by code; the audit trail keys them by this stable UUID."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"clientele:campaigns:event-kind:{code}")


class KindDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: EventKindCode
    name_ru: Name
    name_en: Name


class KindPatch(BaseModel):
    """Rename or archive a kind (its code never changes: events refer to it)."""

    model_config = ConfigDict(extra="forbid")

    name_ru: Name | None = None
    name_en: Name | None = None
    archived: bool | None = None

    @model_validator(mode="after")
    def _not_null(self) -> KindPatch:
        for name in self.model_fields_set:
            if getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class EventKind(BaseModel):
    """A kind of marketing event; an archived one is refused for new writes, kept on events
    that have it."""

    code: str
    name_ru: str
    name_en: str
    archived: bool
    version: int
    created_at: datetime
    updated_at: datetime
