"""Notifier domain: an in-app notification addressed to one employee (no I/O)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel


class Notification(BaseModel):
    id: uuid.UUID
    recipient: str
    title: str
    body: str
    created_at: dt.datetime
    read_at: dt.datetime | None
