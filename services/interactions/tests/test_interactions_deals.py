"""The client summary shows the client's open deals from the pipeline's deal events: stage and
amount as they move, closed and deleted deals gone, other directions' deals hidden."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from clientele_shared.events.catalog import DEALS
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.pipeline import (
    DealChanged,
    DealCreated,
    DealDeleted,
    DealStageChanged,
    DealWon,
)
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish

pytestmark = pytest.mark.integration
PIPELINE = uuid.uuid4()


def _deal(org: uuid.UUID, directions: list[str], title: str) -> DealCreated:
    return DealCreated(
        deal_id=uuid.uuid4(),
        version=1,
        pipeline_id=PIPELINE,
        stage_id=uuid.uuid4(),
        stage_name="Квалификация",
        stage_kind="open",
        status="open",
        organization_id=org,
        title=title,
        amount=Decimal("150000.50"),
        currency="RUB",
        directions=directions,
    )


def _send(stack: Stack, payload: Any, deal_id: uuid.UUID, event_type: str) -> None:
    envelope = directory_envelope(event_type, payload, deal_id, producer="pipeline")
    publish(stack.bootstrap, DEALS, envelope)


def _open_deals(stack: Stack, org: uuid.UUID, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=headers)
    assert response.status_code == 200, response.text
    deals: list[dict[str, Any]] = response.json()["open_deals"]
    return deals


def test_the_summary_follows_the_pipelines_deals(stack: Stack, direction: str) -> None:
    north = f"{direction}-n"
    org = stack.client([direction, north])
    south_sales = bearer(stack.issuer, "alice", directions=[direction])
    both = bearer(stack.issuer, "bob", directions=[direction, north])
    mine, theirs = _deal(org, [direction], "Поставка"), _deal(org, [north], "Северная")
    for deal in (mine, theirs):
        _send(stack, deal, deal.deal_id, "pipeline.deal.created")
    wait_for(lambda: len(_open_deals(stack, org, both)) == 2, 60, "both deals in the summary")
    (seen,) = _open_deals(stack, org, south_sales)  # the other direction's deal is hidden
    assert (seen["title"], seen["stage"], Decimal(seen["amount"])) == (
        "Поставка",
        "Квалификация",
        Decimal("150000.50"),
    )

    moved = DealStageChanged(
        deal_id=mine.deal_id,
        version=2,
        organization_id=org,
        pipeline_id=PIPELINE,
        from_stage_id=mine.stage_id,
        to_stage_id=uuid.uuid4(),
        stage_name="Переговоры",
        stage_kind="open",
        status="open",
        moved_at=datetime.now(UTC),
        title="Поставка",
        amount=Decimal("150000.50"),
        currency="RUB",
    )
    _send(stack, moved, mine.deal_id, "pipeline.deal.stage_changed")
    changed = DealChanged(
        deal_id=mine.deal_id,
        version=3,
        organization_id=org,
        pipeline_id=PIPELINE,
        changes={"amount": FieldChange(old="150000.50", new="210000.00")},
    )
    _send(stack, changed, mine.deal_id, "pipeline.deal.changed")
    stale = changed.model_copy(
        update={"version": 2, "changes": {"amount": FieldChange(old=None, new="1.00")}}
    )
    _send(stack, stale, mine.deal_id, "pipeline.deal.changed")  # older: ignored

    def current() -> dict[str, Any] | None:
        deals = _open_deals(stack, org, south_sales)
        return deals[0] if deals and deals[0]["stage"] == "Переговоры" else None

    wait_for(lambda: current() is not None and current()["amount"] != "150000.50", 60, "moves")
    now = current()
    assert now is not None
    assert Decimal(now["amount"]) == Decimal("210000.00")

    won = DealWon(
        deal_id=mine.deal_id,
        version=4,
        organization_id=org,
        pipeline_id=PIPELINE,
        stage_id=uuid.uuid4(),
        closed_at=datetime.now(UTC),
    )
    _send(stack, won, mine.deal_id, "pipeline.deal.won")
    gone = DealDeleted(deal_id=theirs.deal_id, version=2, organization_id=org)
    _send(stack, gone, theirs.deal_id, "pipeline.deal.deleted")
    wait_for(lambda: _open_deals(stack, org, both) == [], 60, "won and deleted deals to leave")
