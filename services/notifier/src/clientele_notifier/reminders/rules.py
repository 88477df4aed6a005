"""A reminder as the notifier keeps it (no I/O)."""

from __future__ import annotations

import datetime as dt
import uuid

from clientele_shared.events.schemas.notifications import Channel
from pydantic import BaseModel


class Reminder(BaseModel):
    id: uuid.UUID
    requester: str
    state: str
    due_at: dt.datetime
    channel: Channel
    subject: str
    fired_at: dt.datetime | None
