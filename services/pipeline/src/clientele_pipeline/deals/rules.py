"""What a valid deal is, how a patch and a stage move change it (no I/O)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from clientele_shared.values import (
    Amount,
    Currency,
    CustomFields,
    Direction,
    Label,
    Labels,
    Note,
    Title,
)
from pydantic import BaseModel, ConfigDict, Field, model_validator

DealStatus = Literal["open", "won", "lost"]
CENT = Decimal("0.01")

Quantity = Annotated[Decimal, Field(gt=0, max_digits=12, decimal_places=3, allow_inf_nan=False)]
Discount = Annotated[Decimal, Field(ge=0, le=100, decimal_places=2, allow_inf_nan=False)]


class ProductLine(BaseModel):
    """A product or service sold: its total is quantity x price less the discount (percent)."""

    model_config = ConfigDict(extra="forbid")

    name: Title
    quantity: Quantity
    price: Amount
    discount: Discount = Decimal(0)

    def total(self) -> Decimal:
        gross = self.quantity * self.price * (Decimal(100) - self.discount) / Decimal(100)
        return gross.quantize(CENT, rounding=ROUND_HALF_UP)


class Source(BaseModel):
    """Where the deal came from (the lead capture fills it)."""

    model_config = ConfigDict(extra="forbid")

    channel: Label | None = None
    utm_source: Label | None = None
    utm_medium: Label | None = None
    utm_campaign: Label | None = None
    utm_term: Label | None = None
    utm_content: Label | None = None
    form: Label | None = None
    campaign_id: uuid.UUID | None = None


class DealFields(BaseModel):
    """The fields of a deal a person edits, validated as a whole."""

    model_config = ConfigDict(extra="forbid")

    title: Title
    amount: Amount | None = None
    currency: Currency | None = None
    person_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    primary_person_id: uuid.UUID | None = None
    responsible_employee_id: uuid.UUID | None = None
    directions: list[Direction] | None = Field(default=None, min_length=1, max_length=50)
    tags: Labels = Field(default_factory=list)
    custom_fields: CustomFields = Field(default_factory=dict)
    expected_close_date: date | None = None
    source: Source = Field(default_factory=Source)
    products: list[ProductLine] = Field(default_factory=list, max_length=200)
    amount_from_products: bool = Field(
        default=False, description="the amount is the sum of the product lines"
    )

    @model_validator(mode="after")
    def _consistent(self) -> DealFields:
        self.person_ids = list(dict.fromkeys(self.person_ids))
        if self.directions is not None:
            self.directions = sorted(set(self.directions))
        if self.primary_person_id is None and self.person_ids:
            self.primary_person_id = self.person_ids[0]
        if self.primary_person_id is not None and self.primary_person_id not in self.person_ids:
            raise ValueError("primary_person_id must be one of person_ids")
        if self.amount_from_products:
            total = sum((line.total() for line in self.products), Decimal(0))
            if self.amount is not None and self.amount != total:
                raise ValueError(
                    f"amount {self.amount} differs from the product lines' sum {total}"
                )
            self.amount = total
        if (self.amount is not None or self.products) and self.currency is None:
            raise ValueError("an amount or product lines need a currency")
        return self


class DealDraft(DealFields):
    """A new deal: in a pipeline (its first open stage unless ``stage_id``), for a client."""

    pipeline_id: uuid.UUID
    stage_id: uuid.UUID | None = None
    organization_id: uuid.UUID


class DealPatch(BaseModel):
    """A JSON merge patch of a deal's fields: fields present are set, ``null`` clears."""

    model_config = ConfigDict(extra="forbid")

    title: Any = None
    amount: Any = None
    currency: Any = None
    person_ids: Any = None
    primary_person_id: Any = None
    responsible_employee_id: Any = None
    directions: Any = None
    tags: Any = None
    custom_fields: Any = None
    expected_close_date: Any = None
    source: Any = None
    products: Any = None
    amount_from_products: Any = None


EDITABLE = tuple(DealFields.model_fields)

_EMPTY_DEFAULTS: dict[str, Any] = {
    "person_ids": [],
    "tags": [],
    "custom_fields": {},
    "source": {},
    "products": [],
    "amount_from_products": False,
}


def patched_fields(current: DealFields, patch: DealPatch) -> DealFields:
    """The deal's fields after a merge patch (``null`` clears; a list or object is replaced);
    raises ``pydantic.ValidationError`` when the result is not a valid deal."""
    values = current.model_dump()
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        values[name] = _EMPTY_DEFAULTS.get(name) if value is None else value
    if "person_ids" in patch.model_fields_set and "primary_person_id" not in patch.model_fields_set:
        values["primary_person_id"] = (
            current.primary_person_id
            if current.primary_person_id in (values["person_ids"] or [])
            else None
        )
    return DealFields.model_validate(values)


class Deal(DealFields):
    """A deal as the API shows it."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    status: DealStatus
    organization_id: uuid.UUID
    directions: list[str]
    lost_reason: str | None = None
    stage_entered_at: datetime
    closed_at: datetime | None = None
    client_blocked: bool = Field(
        default=False, description="the client is in the unwanted counterparty register"
    )
    checklist_ticks: dict[str, list[str]] = Field(
        default_factory=dict, description="ticked checklist items by stage id"
    )
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def fields(self) -> DealFields:
        return DealFields.model_validate(self.model_dump(include=set(EDITABLE)))


def changes_between(old: DealFields, new: DealFields) -> dict[str, dict[str, Any]]:
    """``{field: {old, new}}`` in the API's JSON shape, for the fields that differ."""
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return {
        name: {"old": before[name], "new": after[name]}
        for name in EDITABLE
        if before[name] != after[name]
    }


class Move(BaseModel):
    """A stage move: where to, why, and for a lost stage which of the pipeline's lost reasons."""

    model_config = ConfigDict(extra="forbid")

    stage_id: uuid.UUID
    reason: Note | None = None
    lost_reason: Label | None = None


def missing_fields(deal: DealFields, required: list[str]) -> list[str]:
    """The fields of a stage's playbook the deal has not filled."""
    missing = []
    for name in required:
        if name.startswith("custom_fields."):
            value: Any = deal.custom_fields.get(name.partition(".")[2])
        elif name.startswith("source."):
            value = getattr(deal.source, name.partition(".")[2])
        else:
            value = getattr(deal, name)
        if value is None or value == [] or value == "":
            missing.append(name)
    return missing


def status_of(stage_kind: str) -> DealStatus:
    if stage_kind == "won":
        return "won"
    if stage_kind == "lost":
        return "lost"
    return "open"


class StageHistoryEntry(BaseModel):
    id: int
    from_stage_id: uuid.UUID | None
    to_stage_id: uuid.UUID
    moved_at: datetime
    actor_subject: str
    actor_kind: str
    reason: str | None
    deal_version: int
