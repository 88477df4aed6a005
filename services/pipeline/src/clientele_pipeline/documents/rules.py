"""An ERP document as the pipeline keeps and shows it (no I/O)."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal

from clientele_shared.events.schemas.erp import (
    INVOICE_ISSUED,
    PAYMENT_RECEIVED,
    SHIPMENT_DISPATCHED,
    ErpDocument,
)
from pydantic import BaseModel, ConfigDict

DocumentKind = Literal["invoice", "payment", "shipment"]
KIND_OF_EVENT: dict[str, DocumentKind] = {
    INVOICE_ISSUED: "invoice",
    PAYMENT_RECEIVED: "payment",
    SHIPMENT_DISPATCHED: "shipment",
}
COMMON = frozenset(ErpDocument.model_fields)


class DocumentRejected(ValueError):
    """A document the pipeline cannot attach: the reason names it (retried, as a client may
    reach the read model a moment later, then dead-lettered with this reason)."""


class Document(BaseModel):
    """An ERP document attached to a deal and/or a client."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    kind: DocumentKind
    document_id: str
    """The ERP's id."""
    deal_id: uuid.UUID | None
    organization_id: uuid.UUID
    inn: str | None
    number: str
    document_date: date
    amount: Decimal
    currency: str
    lines: list[dict[str, Any]]
    details: dict[str, Any]
    """What only this kind carries: ``due_date`` of an invoice, ``invoice_id``, ``paid_at``."""
    revision: int
    """1, and one more with each correction the ERP sent."""
    received_at: datetime
    updated_at: datetime


def stored_values(kind: DocumentKind, document: ErpDocument) -> dict[str, Any]:
    """The columns of a document, amounts kept as the exact decimals the ERP sent."""
    wire = document.model_dump(mode="json")
    return {
        "kind": kind,
        "document_id": document.document_id,
        "inn": document.inn,
        "number": document.number,
        "document_date": document.date,
        "amount": document.amount,
        "currency": document.currency,
        "lines": wire["lines"],
        "details": {
            name: value for name, value in wire.items() if name not in COMMON and value is not None
        },
    }
