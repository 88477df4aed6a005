"""Events the pipeline service publishes on ``clientele.pipeline.deals``.

Every event of one deal is keyed by the deal id, so a deal's events arrive in order. Amounts are
decimals (strings on the wire) with their ISO 4217 currency; times are timezone-aware (UTC on the
wire). ``changed`` carries only the changed fields, each with its old and new value, in the
same JSON shape as the pipeline's API (like the directory's ``updated`` events).
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import FieldChange, Payload
from clientele_shared.events.topics import DEALS

DealStatus = Literal["open", "won", "lost"]
StageKind = Literal["open", "won", "lost", "monitoring"]


class DealSnapshot(Payload):
    """A deal as it is after the change the event reports."""

    deal_id: uuid.UUID
    version: int = Field(ge=1)
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    stage_name: str
    stage_kind: StageKind
    status: DealStatus
    organization_id: uuid.UUID
    title: str
    amount: Decimal | None = None
    currency: str | None = None
    person_ids: list[uuid.UUID] = Field(default_factory=list)
    primary_person_id: uuid.UUID | None = None
    responsible_employee_id: uuid.UUID | None = None
    directions: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)
    expected_close_date: date | None = None
    source: dict[str, Any] = Field(default_factory=dict)
    lost_reason: str | None = None
    products: list[dict[str, Any]] = Field(default_factory=list)
    amount_from_products: bool = False


class DealCreated(DealSnapshot):
    """A new deal (the whole record)."""


class DealChanged(Payload):
    """Changed fields of a deal, each with its old and new value."""

    deal_id: uuid.UUID
    version: int = Field(ge=1)
    organization_id: uuid.UUID
    pipeline_id: uuid.UUID
    changes: dict[str, FieldChange]


class DealStageChanged(Payload):
    """A deal moved from one stage to another (the stage history's new entry)."""

    deal_id: uuid.UUID
    version: int = Field(ge=1)
    organization_id: uuid.UUID
    pipeline_id: uuid.UUID
    from_stage_id: uuid.UUID
    to_stage_id: uuid.UUID
    stage_name: str
    stage_kind: StageKind
    status: DealStatus
    reason: str | None = None
    moved_at: AwareDatetime
    title: str
    amount: Decimal | None = None
    currency: str | None = None


class DealClosed(Payload):
    """A deal reached a won or lost stage."""

    deal_id: uuid.UUID
    version: int = Field(ge=1)
    organization_id: uuid.UUID
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID
    responsible_employee_id: uuid.UUID | None = None
    amount: Decimal | None = None
    currency: str | None = None
    closed_at: AwareDatetime


class DealWon(DealClosed):
    """A deal was won."""


class DealLost(DealClosed):
    """A deal was lost, for one of its pipeline's lost reasons."""

    lost_reason: str


class DealDeleted(Payload):
    """A deal was soft-deleted (it can be restored)."""

    deal_id: uuid.UUID
    version: int = Field(ge=1)
    organization_id: uuid.UUID


class DealRestored(DealSnapshot):
    """A soft-deleted deal was restored (the whole record, as after creation)."""


DEAL_CREATED = "pipeline.deal.created"
DEAL_CHANGED = "pipeline.deal.changed"
DEAL_STAGE_CHANGED = "pipeline.deal.stage_changed"
DEAL_WON = "pipeline.deal.won"
DEAL_LOST = "pipeline.deal.lost"
DEAL_DELETED = "pipeline.deal.deleted"
DEAL_RESTORED = "pipeline.deal.restored"

EVENTS = [
    EventSpec(DEAL_CREATED, 1, DEALS, DealCreated),
    EventSpec(DEAL_CHANGED, 1, DEALS, DealChanged),
    EventSpec(DEAL_STAGE_CHANGED, 1, DEALS, DealStageChanged),
    EventSpec(DEAL_WON, 1, DEALS, DealWon),
    EventSpec(DEAL_LOST, 1, DEALS, DealLost),
    EventSpec(DEAL_DELETED, 1, DEALS, DealDeleted),
    EventSpec(DEAL_RESTORED, 1, DEALS, DealRestored),
]


class DealPaymentReceived(Payload):
    """The ERP reported a payment for a deal (``clientele.erp.documents``), attached to it."""

    deal_id: uuid.UUID
    organization_id: uuid.UUID
    pipeline_id: uuid.UUID
    document_id: str
    """The ERP's id of the payment."""
    invoice_id: str | None = None
    number: str
    date: date
    amount: Decimal
    currency: str
    paid_at: AwareDatetime | None = None


DEAL_PAYMENT_RECEIVED = "pipeline.deal.payment_received"
EVENTS.append(EventSpec(DEAL_PAYMENT_RECEIVED, 1, DEALS, DealPaymentReceived))


class DealInvoiceReceived(Payload):
    """The ERP reported an invoice issued for a deal (``clientele.erp.documents``), attached
    to it."""

    deal_id: uuid.UUID
    organization_id: uuid.UUID
    pipeline_id: uuid.UUID
    document_id: str
    """The ERP's id of the invoice."""
    due_date: date | None = None  # before ``date``, whose name hides the type below it
    number: str
    date: date
    amount: Decimal
    currency: str


DEAL_INVOICE_RECEIVED = "pipeline.deal.invoice_received"
EVENTS.append(EventSpec(DEAL_INVOICE_RECEIVED, 1, DEALS, DealInvoiceReceived))
