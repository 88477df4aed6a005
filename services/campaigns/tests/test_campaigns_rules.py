"""Pure rules of the campaigns service: status transitions, budget totals, effectiveness."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from clientele_campaigns.budget.rules import BudgetLineDraft, totals
from clientele_campaigns.campaigns.rules import CampaignDraft, status_allowed
from clientele_campaigns.effectiveness.rules import (
    AttributedDeal,
    Money,
    Quantity,
    deal_figures,
    figures,
)
from clientele_campaigns.participants.rules import ParticipantPatch, Who, unique
from pydantic import ValidationError


@pytest.mark.parametrize(
    ("old", "new", "allowed"),
    [
        ("planned", "preparing", True),
        ("planned", "done", False),
        ("running", "done", True),
        ("running", "planned", False),
        ("done", "running", True),
        ("done", "cancelled", False),
        ("cancelled", "planned", True),
        ("cancelled", "running", False),
        ("done", "done", True),
    ],
)
def test_status_transitions(old: str, new: str, allowed: bool) -> None:
    assert status_allowed(old, new) is allowed


def test_draft_defaults_and_stage_names() -> None:
    base = {
        "kind": "webinar",
        "title": "Вебинар",
        "planned_start": "2026-01-01T10:00:00+03:00",
        "planned_end": "2026-01-01T11:00:00+03:00",
        "directions": ["north", "north", "east"],
    }
    draft = CampaignDraft.model_validate(base)
    assert draft.directions == ["east", "north"]
    assert len(draft.stages) == 4
    with pytest.raises(ValidationError):
        CampaignDraft.model_validate({**base, "stages": ["Этап", "этап"]})
    with pytest.raises(ValidationError):
        CampaignDraft.model_validate({**base, "planned_start": "2026-01-01T10:00:00"})


def test_budget_totals_never_mix_currencies() -> None:
    lines = [
        BudgetLineDraft(category="venue", currency="RUB", planned=Decimal(1)),
        BudgetLineDraft(category="printing", currency="RUB", actual=Decimal("2.5")),
        BudgetLineDraft(category="printing", currency="EUR", planned=Decimal(3), actual=Decimal(4)),
    ]
    assert lines[1].actual == Decimal("2.50")
    assert [(t.currency, t.planned, t.actual) for t in totals(lines)] == [
        ("EUR", Decimal("3.00"), Decimal("4.00")),
        ("RUB", Decimal("1.00"), Decimal("2.50")),
    ]


def test_figures_round_half_up_and_empty_counts() -> None:
    money = [Money(currency="RUB", category="consumables", planned=Decimal(0), actual=Decimal(1))]
    none = deal_figures([], 0, 0)
    report = figures({"attended": 1, "invited": 1}, money, [], none)
    assert report.costs[0].per_participant == Decimal("0.50")
    assert report.costs[0].per_attendee == Decimal("1.00")
    third = figures({"invited": 3}, money, [Quantity(unit="шт", quantity=Decimal(2))], none)
    assert third.costs[0].per_participant == Decimal("0.33")
    assert third.costs[0].per_attendee is None
    assert third.consumables_used[0].quantity == Decimal(2)
    half = figures(
        {"attended": 8}, [money[0].model_copy(update={"actual": Decimal("0.04")})], [], none
    )
    assert half.costs[0].per_participant == Decimal("0.01")  # 0.005 rounds up


def test_deal_figures_count_each_deal_once_and_never_add_currencies() -> None:
    org = uuid.uuid4()

    def deal(status: str, amount: str | None, currency: str | None) -> AttributedDeal:
        return AttributedDeal(
            deal_id=uuid.uuid4(),
            organization_id=org,
            status=status,
            amount=None if amount is None else Decimal(amount),
            currency=currency,
        )

    won = deal("won", "100.10", "RUB")
    report = deal_figures(
        [won, won, deal("open", "0.90", "RUB"), deal("lost", "5", "EUR"), deal("won", None, None)],
        3,
        2,
    )
    assert (report.deals, report.won) == (4, 2)
    assert [
        (s.currency, s.deals, s.amount, s.won_deals, s.won_amount) for s in report.by_currency
    ] == [
        ("EUR", 1, Decimal("5"), 0, Decimal("0.00")),
        ("RUB", 2, Decimal("101.00"), 1, Decimal("100.10")),
    ]
    assert report.conversion == Decimal("0.6667")  # 2 / 3 rounded half up
    assert deal_figures([], 0, 0).conversion is None


def test_participant_rules() -> None:
    a = Who.model_validate({"organization_id": "00000000-0000-0000-0000-000000000001"})
    assert unique([a, a]) == [a]
    with pytest.raises(ValidationError):
        ParticipantPatch.model_validate({})
    with pytest.raises(ValidationError):
        ParticipantPatch.model_validate({"status": None})
