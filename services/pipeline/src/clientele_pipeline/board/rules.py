"""The board's shapes, filters and cursors (no I/O)."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

from clientele_shared.http.problems import invalid_field
from clientele_shared.values import Direction, Label, clean_text
from pydantic import AfterValidator, BaseModel, Field

from clientele_pipeline.pipelines.rules import Stage


class BoardFilter(BaseModel):
    """Deals shown: all of those filters hold (absent ones do not filter)."""

    responsible_employee_id: uuid.UUID | None = None
    tag: Label | None = None
    direction: Direction | None = None
    amount_min: Decimal | None = Field(default=None, ge=0, max_digits=18, allow_inf_nan=False)
    amount_max: Decimal | None = Field(default=None, ge=0, max_digits=18, allow_inf_nan=False)
    close_from: date | None = None
    close_to: date | None = None
    q: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(clean_text)] | None = (
        Field(default=None, description="a fragment of the title or the client's name")
    )

    def only_directions(self) -> bool:
        """Whether the stored per-stage totals answer (no filter but the direction)."""
        return not (self.model_fields_set - {"direction"}) or all(
            getattr(self, name) is None for name in self.model_fields_set - {"direction"}
        )


class DealCard(BaseModel):
    id: uuid.UUID
    stage_id: uuid.UUID
    title: str
    organization_id: uuid.UUID
    organization_name: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    status: str
    responsible_employee_id: uuid.UUID | None = None
    tags: list[str]
    expected_close_date: date | None = None
    stage_entered_at: datetime
    client_blocked: bool
    created_at: datetime
    version: int


class Total(BaseModel):
    currency: str | None
    amount: Decimal | None
    count: int


class Column(BaseModel):
    stage: Stage
    count: int
    totals: list[Total] = Field(description="sum of amounts per currency")
    deals: list[DealCard]
    next_cursor: str | None = None


class Board(BaseModel):
    pipeline_id: uuid.UUID
    version: int
    columns: list[Column]


def encode_cursor(card: DealCard) -> str:
    raw = f"{card.created_at.isoformat()}|{card.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """The (created_at, id) a column continues after; 422 when it is not a cursor of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, deal_id = raw.partition("|")
        moment = datetime.fromisoformat(created)
        if moment.tzinfo is None:
            raise ValueError("naive")
        return moment, uuid.UUID(deal_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid_field("cursor", "not a board cursor", location="query") from None
