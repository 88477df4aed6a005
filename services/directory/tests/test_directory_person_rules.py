"""Person and employment rules without infrastructure."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from clientele_directory.organizations.rules import PatchRejected
from clientele_directory.persons.rules import (
    Employment,
    EmploymentPatch,
    Person,
    PersonDraft,
    PersonPatch,
    apply_employment_patch,
    apply_person_patch,
    employment_changes,
    keeps_person_visible,
    person_changes,
    person_created_changes,
    person_storage_values,
)
from pydantic import ValidationError


def _draft(**fields: Any) -> PersonDraft:
    return PersonDraft.model_validate({"last_name": "Иванов", "directions": ["north"]} | fields)


def test_names_in_both_scripts() -> None:
    person = _draft(
        first_name="Пётр",
        middle_name="Ильич",
        last_name_latin="Ivanov",
        first_name_latin="Piotr O'Neil-Żak",
    )
    assert person.first_name_latin == "Piotr O'Neil-Żak"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"last_name_latin": "Иванов"}, "Latin letters only"),
        ({"first_name_latin": "John3"}, "Latin letters"),
        ({"last_name": "123"}, "at least one letter"),
        ({"last_name": None}, "first or last name"),
        ({"birthday": str(date.today() + timedelta(days=1))}, "between 1900-01-01 and today"),
        ({"birthday": "1899-12-31"}, "between 1900-01-01 and today"),
        ({"birthday": "2001-02-30"}, "date"),
        ({"directions": []}, "a direction of his own or an employment"),
        ({"consent": {"email": True, "fax": True}}, "Extra inputs"),
        ({"consent": {"email": "maybe"}}, "boolean"),
        (
            {
                "employments": [
                    {
                        "organization_id": str(uuid.uuid4()),
                        "since": "2024-02-01",
                        "until": "2024-01-01",
                    }
                ]
            },
            "cannot end before it starts",
        ),
    ],
)
def test_bad_persons_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _draft(**fields)
    assert message in str(exc.value)


def test_a_person_known_only_through_his_employment() -> None:
    draft = _draft(directions=[], employments=[{"organization_id": str(uuid.uuid4())}])
    assert draft.fields().directions == []
    assert not keeps_person_visible([], 0)
    assert keeps_person_visible([], 1)
    assert keeps_person_visible(["north"], 0)


def test_person_patch_and_changes() -> None:
    person = Person(
        **_draft(emails=["A@Example.com"], consent={"email": True}).fields().model_dump(),
        id=uuid.uuid4(),
        version=1,
    )
    assert person_created_changes(person)["consent"] == {
        "old": None,
        "new": {"email": True, "sms": False, "phone": False},
    }
    patched = apply_person_patch(
        person, PersonPatch.model_validate({"consent": {"email": False}, "birthday": "1980-05-01"})
    )
    assert person_changes(person, patched) == {
        "birthday": {"old": None, "new": "1980-05-01"},
        "consent": {
            "old": {"email": True, "sms": False, "phone": False},
            "new": {"email": False, "sms": False, "phone": False},
        },
    }
    assert person_storage_values(patched)["email_domains"] == ["example.com"]
    with pytest.raises(PatchRejected):
        apply_person_patch(person, PersonPatch.model_validate({"last_name": None}))


def test_employment_patch() -> None:
    job = Employment(
        id=uuid.uuid4(),
        person_id=uuid.uuid4(),
        organization_id=uuid.uuid4(),
        version=1,
        position="Бухгалтер",
        since=date(2020, 1, 1),
    )
    patched = apply_employment_patch(
        job,
        EmploymentPatch.model_validate({"position": "Главный бухгалтер", "until": "2024-01-31"}),
    )
    assert employment_changes(job, patched) == {
        "position": {"old": "Бухгалтер", "new": "Главный бухгалтер"},
        "until": {"old": None, "new": "2024-01-31"},
    }
    with pytest.raises(PatchRejected):
        apply_employment_patch(job, EmploymentPatch.model_validate({"until": "2019-01-01"}))
    with pytest.raises(ValidationError):
        EmploymentPatch.model_validate({"organization_id": str(uuid.uuid4())})
