"""Unit tests: folding persons from directory events, presenting the summary to one caller."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from clientele_interactions.clients.rules import (
    ClientCard,
    DealLine,
    SummaryBody,
    employment_active,
    full_name,
    normalize_emails,
    person_changes,
    person_values,
    present,
)
from clientele_interactions.clock import ManualClock
from clientele_interactions.log.schemas import Interaction
from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import PersonCreated, PersonUpdated

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_persons_fold_with_normalized_emails() -> None:
    person = uuid.uuid4()
    values = person_values(
        PersonCreated(
            person_id=person,
            first_name="Anna",
            emails=["Anna@Example.com", "anna@example.com "],
            directions=["south", "north", "south"],
        )
    )
    assert values["emails"] == ["anna@example.com"]
    assert values["directions"] == ["north", "south"]
    changes = person_changes(
        PersonUpdated(
            person_id=person,
            version=2,
            changes={
                "emails": FieldChange(old=[], new=["X@Y.RU"]),
                "birthday": FieldChange(old=None, new="1990-01-01"),
            },
        )
    )
    assert changes == {"emails": ["x@y.ru"], "blocked": False}
    assert normalize_emails([None, "", "A@B.C"]) == ["a@b.c"]


def test_full_names() -> None:
    assert full_name({"last_name": "Иванов", "first_name": "Иван"}) == "Иванов Иван"
    assert full_name({"first_name_latin": "Ivan", "last_name_latin": "Ivanov"}) == "Ivan Ivanov"
    assert full_name({}) == "—"


def test_employment_is_active_between_its_dates() -> None:
    today = date(2026, 3, 2)
    assert employment_active(None, None, today)
    assert employment_active(date(2020, 1, 1), today, today)
    assert not employment_active(None, date(2026, 3, 1), today)
    assert not employment_active(date(2026, 4, 1), None, today)


def _planned(due: datetime) -> Interaction:
    return Interaction.model_validate(
        {
            "id": uuid.uuid4(),
            "organization_id": uuid.uuid4(),
            "kind": "call",
            "direction": "out",
            "status": "planned",
            "occurred_at": None,
            "due_at": due,
            "duration_seconds": None,
            "person_ids": [],
            "responsible_employee_id": uuid.uuid4(),
            "subject": "x",
            "notes": None,
            "result": None,
            "deal_id": None,
            "campaign_id": None,
            "follows_id": None,
            "source": "api",
            "version": 1,
            "created_at": NOW,
            "created_by": "a",
            "updated_at": NOW,
            "updated_by": "a",
        }
    )


def test_the_summary_shows_each_caller_what_their_directions_allow() -> None:
    card = ClientCard(
        organization_id=uuid.uuid4(),
        legal_name="X",
        short_name=None,
        inn=None,
        status="client",
        directions=["north", "south"],
        version=1,
    )

    def deal(title: str, directions: list[str]) -> DealLine:
        return DealLine(
            deal_id=uuid.uuid4(),
            title=title,
            stage="s",
            status="open",
            amount=Decimal(1),
            currency="RUB",
            directions=directions,
            updated_at=NOW,
        )

    body = SummaryBody(
        people=[],
        last_interactions=[],
        next_planned=[_planned(NOW - timedelta(minutes=1)), _planned(NOW + timedelta(hours=1))],
        open_deals=[deal("north deal", ["north"]), deal("south deal", ["south"])],
        campaigns=[],
        erp_documents=[],
        built_at=NOW,
    )
    north = Principal(subject="a", roles=frozenset({"sales"}), directions=frozenset({"north"}))
    shown = present(card, body, north, now=ManualClock(NOW).now(), overdue_count=1)
    assert [d.title for d in shown.open_deals] == ["north deal"]
    assert [p.overdue for p in shown.next_planned] == [True, False]
    admin = Principal(subject="r", roles=frozenset({"admin"}))
    assert len(present(card, body, admin, now=NOW, overdue_count=1).open_deals) == 2
