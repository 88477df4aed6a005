"""An in-app notification in an employee's inbox (no I/O)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, Field


class Notification(BaseModel):
    """One in-app notification in an employee's inbox."""

    id: uuid.UUID
    recipient: str
    title: str
    body: str
    kind: str = "generic"
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    read_at: dt.datetime | None
