"""Budget lines of a marketing event and their totals per currency (no I/O)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Literal

from clientele_shared.values import Amount, Currency, Label, Title
from pydantic import BaseModel, ConfigDict, Field, model_validator

CostCategory = Literal[
    "venue", "catering", "printing", "advertising", "consumables", "staff_time", "other"
]
MAX_LINES = 200
ZERO = Decimal("0.00")
CENT = Decimal("0.01")
THOUSANDTH = Decimal("0.001")


class BudgetLineDraft(BaseModel):
    """One cost: planned and/or actual, in one currency; consumables (paper, cartridges) may
    say how much was used (``quantity`` of a ``unit``)."""

    model_config = ConfigDict(extra="forbid")

    category: CostCategory
    description: Title | None = None
    currency: Currency
    planned: Amount | None = None
    actual: Amount | None = None
    quantity: Decimal | None = Field(
        default=None, ge=0, max_digits=18, decimal_places=3, allow_inf_nan=False
    )
    unit: Label | None = None

    @model_validator(mode="after")
    def _some_amount(self) -> BudgetLineDraft:
        if self.planned is None and self.actual is None:
            raise ValueError("a budget line needs a planned or an actual amount")
        if (self.quantity is None) != (self.unit is None):
            raise ValueError("quantity and unit go together")
        for name, step in (("planned", CENT), ("actual", CENT), ("quantity", THOUSANDTH)):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.quantize(step))
        return self


class BudgetDraft(BaseModel):
    """The whole budget of an event (replaces the lines it had)."""

    model_config = ConfigDict(extra="forbid")

    lines: list[BudgetLineDraft] = Field(max_length=MAX_LINES)


class BudgetLine(BudgetLineDraft):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    position: int


class Totals(BaseModel):
    currency: str
    planned: Decimal
    actual: Decimal


class Budget(BaseModel):
    campaign_id: uuid.UUID
    version: int
    lines: list[BudgetLine]
    totals: list[Totals]
    """Per currency (amounts in different currencies are never added together)."""


def totals(lines: list[BudgetLine] | list[BudgetLineDraft]) -> list[Totals]:
    """Planned and actual sums per currency, by currency code."""
    planned: dict[str, Decimal] = defaultdict(lambda: ZERO)
    actual: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        planned[line.currency] += line.planned or ZERO
        actual[line.currency] += line.actual or ZERO
    return [
        Totals(currency=currency, planned=planned[currency], actual=actual[currency])
        for currency in sorted(planned)
    ]
