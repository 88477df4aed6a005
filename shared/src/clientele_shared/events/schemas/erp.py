"""Events the ERP publishes on ``clientele.erp.documents``: invoices issued, payments received,
shipments dispatched.

Each document names the ERP's own id (``document_id``, unique per kind: a document sent again
with the same id is a correction of it) and what it is about: a deal id, an organization id
and/or the client's INN (at least one; the pipeline attaches it by the ids, or by the INN when
that is all the ERP knows). Amounts are decimal strings (``"1250.50"``, never JSON numbers: a
binary float would not keep them exactly) with an ISO 4217 currency; the lines, when given, add
up to the amount. Keyed by ``document_id``.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, Field, WithJsonSchema, model_validator

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.topics import ERP_DOCUMENTS
from clientele_shared.values import Currency, Title

_DECIMAL = re.compile(r"^-?\d{1,16}(\.\d{1,3})?$")


def _decimal_string(value: Any) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if not isinstance(value, str) or not _DECIMAL.match(value):
        raise ValueError('must be a decimal string such as "1250.50" (not a JSON number)')
    try:
        return Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ValueError("not a decimal") from None


_SCHEMA = {"type": "string", "pattern": _DECIMAL.pattern}
Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(ge=0, max_digits=18, decimal_places=2),
    WithJsonSchema(_SCHEMA),
]
"""A non-negative amount with at most 2 decimals, as a decimal string."""
Quantity = Annotated[
    Decimal,
    BeforeValidator(_decimal_string),
    Field(gt=0, max_digits=15, decimal_places=3),
    WithJsonSchema(_SCHEMA),
]
Inn = Annotated[str, Field(pattern=r"^(\d{10}|\d{12})$")]
ErpId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]


class DocumentLine(Payload):
    """One line: what, how many, at what price, and its amount (VAT included)."""

    name: Title
    quantity: Quantity
    unit: str | None = Field(default=None, max_length=20)
    price: Money
    amount: Money


class ErpDocument(Payload):
    """What every ERP document carries."""

    document_id: ErpId
    deal_id: uuid.UUID | None = None
    organization_id: uuid.UUID | None = None
    inn: Inn | None = None
    number: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")
    date: dt.date
    amount: Money
    currency: Currency
    lines: list[DocumentLine] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> ErpDocument:
        if self.deal_id is None and self.organization_id is None and self.inn is None:
            raise ValueError("a document needs a deal_id, an organization_id or an inn")
        if self.lines:
            total = sum((line.amount for line in self.lines), Decimal(0))
            if total != self.amount:
                raise ValueError(f"the lines add up to {total}, not to the amount {self.amount}")
        return self


class InvoiceIssued(ErpDocument):
    """An invoice was issued to the client."""

    due_date: dt.date | None = None


class PaymentReceived(ErpDocument):
    """The client paid (an invoice, when ``invoice_id`` names it)."""

    invoice_id: ErpId | None = None
    paid_at: AwareDatetime | None = None


class ShipmentDispatched(ErpDocument):
    """Goods were shipped to the client."""

    invoice_id: ErpId | None = None


INVOICE_ISSUED = "erp.invoice.issued"
PAYMENT_RECEIVED = "erp.payment.received"
SHIPMENT_DISPATCHED = "erp.shipment.dispatched"

EVENTS = [
    EventSpec(INVOICE_ISSUED, 1, ERP_DOCUMENTS, InvoiceIssued),
    EventSpec(PAYMENT_RECEIVED, 1, ERP_DOCUMENTS, PaymentReceived),
    EventSpec(SHIPMENT_DISPATCHED, 1, ERP_DOCUMENTS, ShipmentDispatched),
]
