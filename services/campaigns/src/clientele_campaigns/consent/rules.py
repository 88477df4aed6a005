"""Consent per person and channel: what is recorded and how it reads (no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, get_args

from clientele_shared.events.schemas.mailings import ConsentChannel, ConsentSource
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

CHANNELS: tuple[str, ...] = get_args(ConsentChannel)
Note = Annotated[str, StringConstraints(max_length=2000, pattern=r"^[^\x00]*$")]


class ConsentRequest(BaseModel):
    """A consent given or withdrawn, as the caller heard it (a form, an import, a call)."""

    model_config = ConfigDict(extra="forbid")

    person_id: uuid.UUID
    channel: ConsentChannel
    granted: bool
    source: ConsentSource
    note: Note | None = None


class ConsentEntry(BaseModel):
    """One entry of the ledger (append-only)."""

    model_config = ConfigDict(extra="ignore")

    id: int
    person_id: uuid.UUID
    channel: ConsentChannel
    granted: bool
    source: ConsentSource
    note: str | None = None
    mailing_id: uuid.UUID | None = None
    recorded_at: datetime
    actor_subject: str


class Consents(BaseModel):
    """A person's consent now (the newest entry per channel; none: no consent) and the trail."""

    person_id: uuid.UUID
    current: dict[str, ConsentEntry | None]
    history: list[ConsentEntry] = Field(description="newest first")


def consents(person_id: uuid.UUID, history: list[ConsentEntry]) -> Consents:
    current: dict[str, ConsentEntry | None] = dict.fromkeys(CHANNELS)
    for entry in history:  # newest first
        if current[entry.channel] is None:
            current[entry.channel] = entry
    return Consents(person_id=person_id, current=current, history=history)
