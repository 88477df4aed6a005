"""Merge rules without infrastructure: value choice, attribute keys, consent, employments."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import pytest
from clientele_directory.merging.rules import (
    chosen_attributes,
    chosen_values,
    retargeted,
)
from clientele_directory.organizations.rules import PatchRejected
from clientele_directory.persons.rules import (
    Employment,
    Person,
    duplicate_candidate,
    folded_employment,
    merge_person_fields,
    same_employment,
)


def _person(**fields: Any) -> Person:
    return Person.model_validate({"id": uuid.uuid4(), "version": 1, **fields})


def _job(org: uuid.UUID, **fields: Any) -> Employment:
    return Employment.model_validate(
        {"id": uuid.uuid4(), "person_id": uuid.uuid4(), "organization_id": org, "version": 1}
        | fields
    )


def test_values_win_then_take_then_the_default() -> None:
    mine = {"a": "mine", "b": None, "c": ["x"], "d": "mine"}
    theirs = {"a": "theirs", "b": "theirs", "c": ["y", "x"], "d": "theirs"}
    merged = chosen_values(
        mine, theirs, ("a", "b", "c", "d"), united=frozenset({"c"}), take=["d"], values={"a": 1}
    )
    assert merged == {"a": 1, "b": "theirs", "c": ["x", "y"], "d": "theirs"}


def test_attributes_are_chosen_per_key_or_as_a_whole() -> None:
    mine, theirs = {"segment": "A", "own": 1}, {"segment": "B", "size": 5}
    merged, patch = chosen_attributes(mine, theirs, [])
    assert (merged, patch) == ({"segment": "A", "size": 5, "own": 1}, {})
    _, patch = chosen_attributes(mine, theirs, ["attributes.segment", "attributes.size"])
    assert patch == {"segment": "B"}  # size already came over
    _, patch = chosen_attributes(mine, theirs, ["attributes"])
    assert patch == {"segment": "B", "own": None}  # all the other's values: own is cleared


def test_references_to_the_merged_record_point_at_the_survivor() -> None:
    values = {"boss": "old", "peer": "old", "note": "old"}
    assert retargeted(values, {"boss", "peer"}, "old", "new") == {
        "boss": "new",
        "peer": "new",
        "note": "old",
    }


def test_a_merge_never_widens_consent() -> None:
    survivor = _person(
        last_name="Петров",
        emails=["p@example.org"],
        consent={"email": True, "sms": True, "phone": False},
        directions=["north"],
    )
    other = _person(
        last_name="Petrov-typo",
        first_name="Пётр",
        birthday="1980-05-01",
        emails=["petrov@example.org", "p@example.org"],
        consent={"email": False, "sms": True, "phone": True},
        directions=["south"],
    )
    merged, patch = merge_person_fields(survivor, other, [], {})
    assert patch == {}
    assert merged.last_name == "Петров"
    assert merged.first_name == "Пётр"
    assert merged.birthday == date(1980, 5, 1)
    assert merged.emails == ["p@example.org", "petrov@example.org"]
    assert merged.directions == ["north", "south"]
    assert merged.consent.model_dump() == {"email": False, "sms": True, "phone": False}
    # neither taking the other's consent nor setting one explicitly widens it
    taken, _ = merge_person_fields(survivor, other, ["consent"], {})
    assert taken.consent.model_dump() == {"email": False, "sms": True, "phone": False}
    given, _ = merge_person_fields(
        survivor, other, [], {"consent": {"email": True, "sms": False, "phone": True}}
    )
    assert given.consent.model_dump() == {"email": False, "sms": False, "phone": False}


def test_bad_choices_are_rejected() -> None:
    survivor, other = _person(last_name="А"), _person(last_name="Б")
    for take, values in (
        (["nonsense"], {}),
        (["attributes."], {}),
        ([], {"employments": []}),
        ([], {"attributes": "x"}),
        ([], {"birthday": "1800-01-01"}),
        ([], {"last_name": None}),  # nobody without a name
    ):
        with pytest.raises(PatchRejected):
            merge_person_fields(survivor, other, take, values)
    chosen, patch = merge_person_fields(
        survivor, other, ["last_name"], {"attributes": {"vip": True}}
    )
    assert chosen.last_name == "Б"
    assert patch == {"vip": True}


def test_employments_at_one_place_in_one_position_are_one() -> None:
    org, elsewhere = uuid.uuid4(), uuid.uuid4()
    mine = _job(
        org,
        position="Главный  бухгалтер",
        since="2020-01-01",
        until="2022-01-01",
        emails=["a@x.ru"],
    )
    assert same_employment(mine, _job(org, position="главный бухгалтер"))
    assert not same_employment(mine, _job(org, position="Директор"))
    assert not same_employment(mine, _job(elsewhere, position="Главный бухгалтер"))
    assert same_employment(_job(org), _job(org))
    theirs = _job(
        org,
        position="главный бухгалтер",
        department="Финансы",
        since="2018-03-01",
        until="2023-06-30",
        emails=["b@x.ru", "a@x.ru"],
    )
    folded = folded_employment(mine, theirs)
    assert folded.position == "Главный  бухгалтер"
    assert folded.department == "Финансы"
    assert (folded.since, folded.until) == (date(2018, 3, 1), date(2023, 6, 30))
    assert folded.emails == ["a@x.ru", "b@x.ru"]
    assert folded_employment(mine, _job(org, position="Главный бухгалтер")).until is None


def test_duplicate_evidence_and_rank() -> None:
    target = _person(last_name="Смирнова", birthday="1985-02-03")
    twin = duplicate_candidate(
        target,
        _person(last_name="Smirnova", birthday="1985-02-03"),
        email=False,
        phone=False,
        name_similarity=1.0,
    )
    assert twin.matched_by == ["name", "birthday"]
    assert twin.score == 1.5
    namesake = duplicate_candidate(
        target,
        _person(last_name="Смирнова", birthday="1990-01-01"),
        email=False,
        phone=False,
        name_similarity=1.0,
    )
    assert (namesake.birthday, namesake.score) == ("different", 0.0)
    contact = duplicate_candidate(
        target, _person(last_name="Иванов"), email=True, phone=True, name_similarity=0.2
    )
    assert contact.matched_by == ["email", "phone"]  # a weak name is no evidence
    assert (contact.birthday, contact.score) == ("unknown", 4.2)
