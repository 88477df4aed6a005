"""The ERP's documents against the real service: attached to deals and clients by ids or by
INN, exactly once, corrections replacing, amounts kept exactly, a payment announced on the
deal, and every document it cannot attach dead-lettered with a readable reason."""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from clientele_shared.events.catalog import DEALS, ERP_DOCUMENTS, REGISTRY
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.directory import OrganizationCreated, OrganizationMerged
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]
DEAD_LETTERS = f"{ERP_DOCUMENTS}.dlt"


def _inn() -> str:
    return "".join(random.choice("0123456789") for _ in range(10))


def _organization(stack: Stack, inn: str) -> uuid.UUID:
    org_id = uuid.uuid4()
    payload = OrganizationCreated(
        organization_id=org_id, legal_name="ООО «Сталь»", inn=inn, status="active", directions=NORTH
    )
    stack.publish("organization", "directory.organization.created", payload, org_id)
    stack.wait_until(
        "SELECT count(*) FROM organizations WHERE organization_id = :id", 1, "the org", id=org_id
    )
    return org_id


def _erp(event_type: str, **payload: Any) -> Envelope:
    return Envelope(
        type=event_type,
        schema_version=1,
        producer="erp",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="erp", kind="service"),
        aggregate_id=str(payload["document_id"]),
        payload=payload,
    )


def _dead_letters(stack: Stack, keys: set[str], wanted: int) -> dict[str, str]:
    """The dead-letter reason of each document (by its ERP id) once ``wanted`` were seen."""

    async def read() -> dict[str, str]:
        consumer = AIOKafkaConsumer(
            DEAD_LETTERS,
            bootstrap_servers=stack.bootstrap,
            group_id=f"test-{uuid.uuid4()}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: dict[str, str] = {}
        try:
            for _ in range(60):
                batch = await consumer.getmany(timeout_ms=1000)
                for records in batch.values():
                    for record in records:
                        key = (record.key or b"").decode()
                        if key in keys:
                            headers = dict(record.headers or ())
                            found[key] = headers["dlt.error"].decode()
                if len(found) >= wanted:
                    break
        finally:
            await consumer.stop()
        return found

    return asyncio.run(read())


@pytest.fixture(scope="module")
def deal(stack: Stack) -> dict[str, Any]:
    body = {"name": "ERP", "directions": NORTH, "stages": DEFAULT_STAGES}
    pipeline = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body)
    assert pipeline.status_code == 201, pipeline.text
    client = _organization(stack, _inn())
    draft = {"pipeline_id": pipeline.json()["id"], "organization_id": str(client), "title": "Ст"}
    created = stack.call("POST", "/v1/deals", stack.user(NORTH), json=draft)
    assert created.status_code == 201, created.text
    return created.json()


def _documents(stack: Stack, deal: dict[str, Any]) -> list[dict[str, Any]]:
    response = stack.call("GET", f"/v1/deals/{deal['id']}/documents", stack.user(NORTH))
    assert response.status_code == 200, response.text
    result: list[dict[str, Any]] = response.json()
    return result


def test_invoice_and_payment_on_a_deal(stack: Stack, deal: dict[str, Any]) -> None:
    invoice_id, payment_id = f"INV-{uuid.uuid4()}", f"PAY-{uuid.uuid4()}"
    lines = [
        {
            "name": "Сталь листовая",
            "quantity": "2.5",
            "unit": "т",
            "price": "1000.20",
            "amount": "2500.50",
        },
        {"name": "Доставка", "quantity": "1", "price": "0.01", "amount": "0.01"},
    ]
    invoice = _erp(
        "erp.invoice.issued",
        document_id=invoice_id,
        deal_id=deal["id"],
        number="СЧ-17",
        date="2026-12-01",
        due_date="2026-12-15",
        amount="2500.51",
        currency="RUB",
        lines=lines,
    )
    payment = _erp(
        "erp.payment.received",
        document_id=payment_id,
        deal_id=deal["id"],
        invoice_id=invoice_id,
        number="ПП-5",
        date="2026-12-03",
        amount="99999999999999.99",
        currency="RUB",
        paid_at="2026-12-03T09:30:00+03:00",
    )
    stack.send(ERP_DOCUMENTS, [invoice, payment, payment])  # a redelivery: once
    stack.wait_until(
        "SELECT count(*) FROM erp_documents WHERE deal_id = :id", 2, "both", id=deal["id"]
    )
    documents = {d["kind"]: d for d in _documents(stack, deal)}
    assert documents["invoice"]["amount"] == "2500.51"
    assert documents["invoice"]["lines"][0]["price"] == "1000.20"
    assert documents["invoice"]["details"] == {"due_date": "2026-12-15"}
    assert documents["invoice"]["organization_id"] == deal["organization_id"]
    assert documents["payment"]["amount"] == "99999999999999.99"
    assert documents["payment"]["revision"] == 1
    [paid] = [e for e in stack.events(DEALS, {deal["id"]}, 2) if "payment" in e.type]
    assert paid.type == "pipeline.deal.payment_received"
    assert paid.payload["amount"] == "99999999999999.99"
    assert paid.payload["invoice_id"] == invoice_id
    # the ERP corrects the payment: one document, a new revision, no second announcement
    correction = _erp("erp.payment.received", **{**payment.payload, "amount": "100.00"})
    stack.send(ERP_DOCUMENTS, [correction])
    stack.wait_until(
        "SELECT revision FROM erp_documents WHERE document_id = :id", 2, "the fix", id=payment_id
    )
    assert {d["kind"]: d for d in _documents(stack, deal)}["payment"]["amount"] == "100.00"
    assert len([e for e in stack.events(DEALS, {deal["id"]}, 3) if "payment" in e.type]) == 1
    assert (
        stack.call("GET", f"/v1/deals/{deal['id']}/documents", stack.user(["south"])).status_code
        == 404
    )


def test_by_inn_only(stack: Stack) -> None:
    inn = _inn()
    client = _organization(stack, inn)
    shipment = _erp(
        "erp.shipment.dispatched",
        document_id=f"SH-{uuid.uuid4()}",
        inn=inn,
        number="ТН-1",
        date="2026-12-04",
        amount="10.00",
        currency="USD",
    )
    stack.send(ERP_DOCUMENTS, [shipment])
    stack.wait_until(
        "SELECT count(*) FROM erp_documents WHERE organization_id = :id AND deal_id IS NULL",
        1,
        "the shipment with its client",
        id=client,
    )


def test_a_clients_documents_without_a_deal(stack: Stack, deal: dict[str, Any]) -> None:
    """A client's documents are read by organization, those attached to no deal too, within
    the caller's directions; a merged client's documents show on the survivor."""
    inn = _inn()
    client = _organization(stack, inn)
    invoice = _erp(
        "erp.invoice.issued",
        document_id=f"INV-{uuid.uuid4()}",
        inn=inn,
        number="СЧ-9",
        date="2026-12-05",
        amount="0.10",
        currency="EUR",
    )
    stack.send(ERP_DOCUMENTS, [invoice])
    stack.wait_until(
        "SELECT count(*) FROM erp_documents WHERE organization_id = :id",
        1,
        "the invoice",
        id=client,
    )
    north, south = stack.user(NORTH), stack.user(["south"])
    response = stack.call("GET", f"/v1/organizations/{client}/documents", north)
    assert response.status_code == 200, response.text
    [found] = response.json()
    assert (found["kind"], found["deal_id"], found["amount"]) == ("invoice", None, "0.10")
    assert stack.call("GET", f"/v1/organizations/{client}/documents", south).status_code == 404
    unknown = stack.call("GET", f"/v1/organizations/{uuid.uuid4()}/documents", north)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
    survivor = uuid.UUID(deal["organization_id"])
    merged = OrganizationMerged(
        survivor_id=survivor, merged_id=client, survivor_version=2, merged_version=2
    )
    stack.publish("organization", "directory.organization.merged", merged, survivor)
    stack.wait_until(
        "SELECT merged_into FROM organizations WHERE organization_id = :id",
        survivor,
        "the merge",
        id=client,
    )
    on_survivor = stack.call("GET", f"/v1/organizations/{survivor}/documents", north).json()
    assert invoice.payload["document_id"] in {d["document_id"] for d in on_survivor}


def test_documents_it_cannot_attach_are_dead_lettered(stack: Stack, deal: dict[str, Any]) -> None:
    other = _organization(stack, _inn())
    base = {"number": "1", "date": "2026-12-05", "amount": "5.00", "currency": "RUB"}
    cases = {
        "float": ({**base, "amount": 5.0, "deal_id": deal["id"]}, "decimal string"),
        "lines": (
            {
                **base,
                "deal_id": deal["id"],
                "lines": [{"name": "x", "quantity": "1", "price": "4.00", "amount": "4.00"}],
            },
            "add up to 4.00",
        ),
        "nothing": (base, "needs a deal_id, an organization_id or an inn"),
        "currency": ({**base, "currency": "XYZ", "deal_id": deal["id"]}, "ISO 4217"),
        "unknown-inn": ({**base, "inn": _inn()}, "no organization with INN"),
        "unknown-deal": ({**base, "deal_id": str(uuid.uuid4())}, "no deal"),
        "mismatch": (
            {**base, "deal_id": deal["id"], "organization_id": str(other)},
            "is with organization",
        ),
    }
    ids = {name: f"BAD-{name}-{uuid.uuid4()}" for name in cases}
    stack.send(
        ERP_DOCUMENTS,
        [
            _erp("erp.invoice.issued", document_id=ids[name], **payload)
            for name, (payload, _) in cases.items()
        ],
    )
    reasons = _dead_letters(stack, set(ids.values()), len(ids))
    for name, (_, reason) in cases.items():
        assert reason in reasons.get(ids[name], ""), (name, reasons.get(ids[name]))
    assert stack.scalar("SELECT count(*) FROM erp_documents WHERE document_id LIKE 'BAD-%'") == 0
    assert REGISTRY.topic(ERP_DOCUMENTS).dead_letter == DEAD_LETTERS
