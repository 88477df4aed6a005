"""Deals attributed to marketing events, from the pipeline's deal events on Kafka, checked
against hand-computed values: deals whose source names the event, deals a participating
organization opened within the window, sums per currency, conversion, access by direction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from campaigns_testkit import Stack, create_event
from clientele_shared.events.catalog import DEALS, REGISTRY
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.pipeline import (
    DealChanged,
    DealCreated,
    DealDeleted,
    DealWon,
)
from pydantic import BaseModel

PIPELINE = uuid.uuid4()
STAGE = uuid.uuid4()


def _envelope(event_type: str, payload: BaseModel, deal_id: uuid.UUID, at: datetime) -> Envelope:
    return Envelope(
        type=event_type,
        schema_version=REGISTRY.spec_for(event_type, payload).version,
        producer="pipeline",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="test", kind="user"),
        aggregate_id=str(deal_id),
        occurred_at=at,
        payload=payload.model_dump(mode="json"),
    )


class Deals:
    """Deal events as the pipeline publishes them, sent in one batch."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self.last: dict[uuid.UUID, int] = {}

    def created(
        self,
        org: uuid.UUID,
        at: datetime,
        amount: str | None = None,
        *,
        directions: tuple[str, ...] = ("north",),
        campaign: str | None = None,
    ) -> uuid.UUID:
        deal_id = uuid.uuid4()
        payload = DealCreated(
            deal_id=deal_id,
            version=1,
            pipeline_id=PIPELINE,
            stage_id=STAGE,
            stage_name="Новая",
            stage_kind="open",
            status="open",
            organization_id=org,
            title="Поставка",
            amount=None if amount is None else Decimal(amount),
            currency=None if amount is None else "EUR" if campaign else "RUB",
            directions=list(directions),
            source={"channel": "seminar", "campaign_id": campaign} if campaign else {},
        )
        self.envelopes.append(_envelope("pipeline.deal.created", payload, deal_id, at))
        self.last[deal_id] = 1
        return deal_id

    def _next(self, deal_id: uuid.UUID) -> int:
        self.last[deal_id] += 1
        return self.last[deal_id]

    def won(self, deal_id: uuid.UUID, org: uuid.UUID, at: datetime) -> None:
        payload = DealWon(
            deal_id=deal_id,
            version=self._next(deal_id),
            organization_id=org,
            pipeline_id=PIPELINE,
            stage_id=STAGE,
            closed_at=at,
        )
        self.envelopes.append(_envelope("pipeline.deal.won", payload, deal_id, at))

    def priced(self, deal_id: uuid.UUID, org: uuid.UUID, amount: str, at: datetime) -> None:
        payload = DealChanged(
            deal_id=deal_id,
            version=self._next(deal_id),
            organization_id=org,
            pipeline_id=PIPELINE,
            changes={
                "amount": FieldChange(old=None, new=amount),
                "currency": FieldChange(old=None, new="RUB"),
            },
        )
        self.envelopes.append(_envelope("pipeline.deal.changed", payload, deal_id, at))

    def deleted(self, deal_id: uuid.UUID, org: uuid.UUID, at: datetime) -> None:
        payload = DealDeleted(deal_id=deal_id, version=self._next(deal_id), organization_id=org)
        self.envelopes.append(_envelope("pipeline.deal.deleted", payload, deal_id, at))

    def send(self, stack: Stack) -> None:
        stack.send(DEALS, self.envelopes)
        for deal_id, version in self.last.items():
            stack.wait_until(
                "SELECT version FROM deals WHERE deal_id = :id",
                version,
                "the deal in the read model",
                id=deal_id,
            )


def _participants(stack: Stack, event: dict[str, Any], who: list[tuple[uuid.UUID, str]]) -> None:
    user = stack.user(["north"])
    base = f"/v1/campaigns/{event['id']}/participants"
    added = stack.call(
        "POST", base, user, json={"participants": [{"organization_id": str(o)} for o, _ in who]}
    ).json()["added"]
    assert len(added) == len(who)
    for participant, (_, status) in zip(added, who, strict=True):
        if status != "invited":
            changed = stack.call(
                "PATCH", f"{base}/{participant['id']}", user, if_match=1, json={"status": status}
            )
            assert changed.status_code == 200, changed.text


def test_deals_attributed_to_events(stack: Stack) -> None:
    year = 2100 + uuid.uuid4().int % 7000  # a period no earlier run has used
    start = datetime(year, 5, 12, 10, tzinfo=UTC)
    end = start + timedelta(hours=8)
    first = create_event(
        stack, planned_start=start.isoformat(), planned_end=end.isoformat(), title="Семинар"
    )
    second_start = start + timedelta(days=8)
    second = create_event(
        stack,
        planned_start=second_start.isoformat(),
        planned_end=(second_start + timedelta(hours=8)).isoformat(),
    )
    a, b, c, d, x = (stack.organization(["north"]) for _ in range(5))
    _participants(
        stack, first, [(a, "attended"), (b, "invited"), (c, "cancelled"), (d, "attended")]
    )
    _participants(stack, second, [(a, "attended")])

    deals = Deals()
    d1 = deals.created(a, end + timedelta(days=10), "1000.00")  # in the window of both events
    deals.won(d1, a, end + timedelta(days=11))
    deals.created(b, end + timedelta(days=100), "700.00")  # past the 90-day window
    deals.created(x, end + timedelta(days=400), "500.00", campaign=first["id"])  # names it
    deals.created(a, start - timedelta(days=1), "9999.00")  # before the event
    deals.created(c, end + timedelta(days=5), "9999.00")  # a participant who cancelled
    d6 = deals.created(a, end + timedelta(days=20), "300.50")
    deals.deleted(d6, a, end + timedelta(days=21))
    deals.created(a, end + timedelta(days=30), "9999.00", directions=("south",))  # not seen
    d8 = deals.created(b, end + timedelta(days=1))  # no amount yet
    deals.priced(d8, b, "250.00", end + timedelta(days=2))
    deals.won(d8, b, end + timedelta(days=3))
    deals.send(stack)
    # an old event again (redelivered, or read again from the topic): no going back
    stack.send(DEALS, [deals.envelopes[0]])

    north = stack.user(["north"])
    report = stack.call("GET", f"/v1/campaigns/{first['id']}/effectiveness", north).json()
    # d1 (A, won, 1000 RUB), d3 (names the event, 500 EUR), d8 (B, won, 250 RUB)
    # participating A, B, D (C cancelled); converted A, B: 2 / 3 = 0.6667
    assert report["deals"] == {
        "deals": 3,
        "won": 2,
        "by_currency": [
            {
                "currency": "EUR",
                "deals": 1,
                "amount": "500.00",
                "won_deals": 0,
                "won_amount": "0.00",
            },
            {
                "currency": "RUB",
                "deals": 2,
                "amount": "1250.00",
                "won_deals": 2,
                "won_amount": "1250.00",
            },
        ],
        "participating_organizations": 3,
        "converted_organizations": 2,
        "conversion": "0.6667",
    }
    wider = stack.call(
        "GET",
        f"/v1/campaigns/{first['id']}/effectiveness",
        north,
        params={"attribution_days": 120},
    ).json()["deals"]
    assert (wider["deals"], wider["by_currency"][1]["amount"]) == (4, "1950.00")  # + d2
    assert wider["conversion"] == "0.6667"  # B converted already
    everywhere = stack.user(["north", "south"])
    seen_more = stack.call("GET", f"/v1/campaigns/{first['id']}/effectiveness", everywhere).json()[
        "deals"
    ]
    assert seen_more["deals"] == 4  # + the deal of the south
    assert (
        stack.call(
            "GET", f"/v1/campaigns/{first['id']}/effectiveness", stack.user(["south"])
        ).status_code
        == 404
    )

    period = stack.call(
        "GET",
        "/v1/effectiveness",
        north,
        params={"from": f"{year}-05-01T00:00:00Z", "to": f"{year}-06-01T00:00:00Z"},
    ).json()
    assert [e["campaign_id"] for e in period["events"]] == [first["id"], second["id"]]
    second_deals = period["events"][1]["deals"]
    assert (second_deals["deals"], second_deals["conversion"]) == (1, "1.0000")  # d1
    # d1 counted once over both events; participations 3 + 1, converted 2 + 1 = 0.75
    totals = period["deals"]
    assert (totals["deals"], totals["won"]) == (3, 2)
    assert totals["by_currency"][1]["amount"] == "1250.00"
    assert (totals["participating_organizations"], totals["converted_organizations"]) == (4, 3)
    assert totals["conversion"] == "0.7500"
    bad = stack.call(
        "GET",
        f"/v1/campaigns/{first['id']}/effectiveness",
        north,
        params={"attribution_days": -1},
    )
    assert bad.status_code == 422
