"""What an attachment of an interaction is (its bytes live in the attachment storage)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

NO_ATTACHMENT = "No such attachment."


class Attachment(BaseModel):
    id: uuid.UUID
    interaction_id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    created_at: datetime
    created_by: str
