"""A lead's rules without I/O: what intake accepts and normalizes, the deal it becomes, turns."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from clientele_pipeline.leads.rules import (
    Conversion,
    Lead,
    LeadIntake,
    deal_source,
    deal_title,
    turn_of,
)
from pydantic import ValidationError


def _lead(**values: Any) -> Lead:
    now = datetime.now(UTC)
    base = {
        "id": uuid.uuid4(),
        "direction": "north",
        "source": "web_form",
        "status": "new",
        "last_received_at": now,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }
    return Lead.model_validate({**base, **values})


@pytest.mark.parametrize(
    ("raw", "compact"),
    [
        ("7707083893", "7707083893"),
        (" 7707 083 893 ", "7707083893"),
        ("500100732259", "500100732259"),
    ],
)
def test_an_inn_is_compacted_when_its_check_digits_hold(raw: str, compact: str) -> None:
    assert LeadIntake(source="email", inn=raw).inn == compact


@pytest.mark.parametrize("raw", ["7707083894", "500100732250", "770708389", "77070838931", "ИНН"])
def test_an_inn_with_wrong_digits_or_length_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="inn"):
        LeadIntake(source="email", inn=raw)


def test_contacts_are_normalized_as_the_directory_does() -> None:
    intake = LeadIntake(source="phone", email="Ivan@Пример.РФ", phone="+7 (495) 123-45-67")
    assert intake.email == "Ivan@пример.рф"
    assert intake.phone == "+74951234567"


def test_details_are_flat_and_bounded() -> None:
    assert LeadIntake(source="web_form", details={"utm_source": " ya "}).details == {
        "utm_source": "ya"
    }
    for details in ({"utm": ["a"]}, {"x" * 65: "v"}, {"k": "v" * 501}, {"k": "\x07"}):
        with pytest.raises(ValidationError):
            LeadIntake(source="web_form", details=details)


def test_the_deal_takes_the_company_else_the_contact_and_the_utm_marks() -> None:
    conversion = Conversion(organization_id=uuid.uuid4())
    assert deal_title(_lead(company_name="ООО «А»", contact_name="Анна"), conversion) == (
        "Заявка: ООО «А»"
    )
    assert deal_title(_lead(contact_name="Анна"), conversion) == "Заявка: Анна"
    long_name = "Я" * 500  # a title past its limit would refuse a conversion nobody titled
    assert deal_title(_lead(company_name=long_name), conversion) == ("Заявка: " + long_name)[:500]
    assert deal_title(_lead(), conversion) == "Заявка (web_form)"
    named = Conversion(organization_id=uuid.uuid4(), title="Лицензии")
    assert deal_title(_lead(company_name="ООО «А»"), named) == "Лицензии"
    lead = _lead(details={"utm_source": "ya", "utm_term": "x" * 300, "page": "/"})
    assert deal_source(lead) == {"channel": "web_form", "utm_source": "ya", "utm_term": "x" * 100}


def test_turns_go_round() -> None:
    staff = [uuid.uuid4() for _ in range(3)]
    assert [turn_of(staff, turn) for turn in range(7)] == [*staff, *staff, staff[0]]
