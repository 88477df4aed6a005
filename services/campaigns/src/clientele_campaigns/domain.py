"""Campaigns domain: a marketing event with its plan and budget (no I/O)."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator


class CampaignKind(enum.StrEnum):
    SEMINAR = "seminar"
    CONFERENCE = "conference"
    EXHIBITION = "exhibition"
    MAILING = "mailing"


class Money(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    amount: Decimal = Field(ge=0, max_digits=18, decimal_places=2)
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "RUB"


class CampaignDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
    kind: CampaignKind
    planned_start: dt.date
    planned_end: dt.date
    budget: Money
    directions: list[Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]] = (
        Field(min_length=1, max_length=50)
    )

    @model_validator(mode="after")
    def _ordered_dates(self) -> Self:
        if self.planned_end < self.planned_start:
            raise ValueError("planned_end is before planned_start")
        return self


class Campaign(CampaignDraft):
    id: uuid.UUID
