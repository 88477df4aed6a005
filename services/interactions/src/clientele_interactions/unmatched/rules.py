"""What an unmatched address of captured mail is, and what linking one answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from clientele_interactions.log.schemas import Interaction

UnmatchedStatus = Literal["open", "linked", "dismissed"]


class UnmatchedAddress(BaseModel):
    """An address of captured mail that matched no person nor the company, to resolve: link it
    to a person (who joins the interaction's participants) or dismiss it. Without
    ``interaction_id`` the mail itself found no client (``candidates``: the clients its known
    persons work at, none or several) and stays flagged in the mailbox."""

    id: uuid.UUID
    address: str
    display_name: str | None
    role: Literal["from", "to", "cc"]
    subject: str
    message_id: str | None
    sent_at: datetime | None
    interaction_id: uuid.UUID | None
    organization_id: uuid.UUID | None = None
    """The captured interaction's client."""
    candidates: list[uuid.UUID]
    mailbox: str | None
    """The mailbox it came from (none: an uploaded file)."""
    status: UnmatchedStatus
    person_id: uuid.UUID | None
    created_at: datetime
    created_by: str
    resolved_at: datetime | None
    resolved_by: str | None


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    person_id: uuid.UUID = Field(description="a person the directory knows (not deleted)")


class LinkOutcome(BaseModel):
    unmatched: UnmatchedAddress
    interaction: Interaction
