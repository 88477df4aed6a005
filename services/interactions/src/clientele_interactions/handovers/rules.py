"""What a hand-over is: an employee's open planned contacts moved to another."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field, model_validator

from clientele_interactions.log.schemas import Input, Reason


class HandoverRequest(Input):
    """Move the open planned contacts of one employee to another: of one client, or all the
    caller may see (vacation, dismissal)."""

    from_employee_id: uuid.UUID
    to_employee_id: uuid.UUID
    organization_id: uuid.UUID | None = Field(
        default=None, description="only this client's contacts (default: every visible client)"
    )
    reason: Reason | None = None

    @model_validator(mode="after")
    def _two_people(self) -> HandoverRequest:
        if self.from_employee_id == self.to_employee_id:
            raise ValueError("hand over to another employee")
        return self


class Handover(BaseModel):
    id: uuid.UUID
    from_employee_id: uuid.UUID
    to_employee_id: uuid.UUID
    organization_id: uuid.UUID | None
    reason: str | None
    interactions_moved: int
    interaction_ids: list[uuid.UUID]
    organizations: list[uuid.UUID]
    created_at: datetime
    created_by: str
