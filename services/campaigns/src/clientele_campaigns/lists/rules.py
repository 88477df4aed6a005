"""Adding a directory list's members to an event, and what a resolution keeps (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from clientele_campaigns.participants.rules import ParticipantStatus, Refused


class FromList(BaseModel):
    """A static list of the directory, resolved now into the event's participants at a stage."""

    model_config = ConfigDict(extra="forbid")

    list_id: uuid.UUID
    stage_id: uuid.UUID | None = None
    status: ParticipantStatus = "invited"


class Resolution(BaseModel):
    """A list as it was resolved into an event: when, by whom, how many members, added and
    refused."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    campaign_id: uuid.UUID
    list_id: uuid.UUID
    list_name: str
    stage_id: uuid.UUID
    members: int
    added: int
    refused: int
    resolved_at: datetime
    actor_subject: str


class ResolutionMember(BaseModel):
    organization_id: uuid.UUID
    outcome: str
    """``added`` or the reason the member was refused."""


class ListAddition(BaseModel):
    """A resolution and its refusals (the added participants are listed under the event: a
    list may add 100,000)."""

    resolution: Resolution
    refused: list[Refused]
