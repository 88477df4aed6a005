"""Custom attribute rules without infrastructure: definitions, values, patches, conditions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_directory.attributes.rules import (
    AttributeDefinition,
    AttributeDefinitionDraft,
    AttributeDefinitionPatch,
    AttributeErrors,
    AttributeValueError,
    apply_attribute_patch,
    attribute_changes,
    normalized_condition,
    patch_definition,
    validate_value,
)
from pydantic import ValidationError


def _def(key: str, type_: str, **extra: Any) -> AttributeDefinition:
    return AttributeDefinition.model_validate(
        {
            "id": uuid.uuid4(),
            "entity_kind": "organization",
            "key": key,
            "label": key,
            "type": type_,
            "required": False,
            "version": 1,
            **extra,
        }
    )


REGION = _def("region", "enum", options=["Север", "Юг"])
CHANNELS = _def("channels", "multi_enum", options=["email", "phone", "visit"])
BUDGET = _def("budget", "money")
SIZE = _def("size", "number")
SINCE = _def("since", "date")
VIP = _def("vip", "bool")
NOTE = _def("note", "string")
PARENT = _def("parent", "reference", reference_kind="organization")
DEFS = {d.key: d for d in (REGION, CHANNELS, BUDGET, SIZE, SINCE, VIP, NOTE, PARENT)}


@pytest.mark.parametrize(
    ("definition", "raw", "stored"),
    [
        (SIZE, "1 234,50", 1234.5),
        (SIZE, 42, 42),
        (SIZE, "1e3", 1000),
        (VIP, "да", True),
        (VIP, "No", False),
        (SINCE, "31.12.2024", "2024-12-31"),
        (SINCE, "2024-02-29", "2024-02-29"),
        (REGION, "юг", "Юг"),
        (CHANNELS, "visit; EMAIL", ["email", "visit"]),
        (CHANNELS, ["phone", "phone"], ["phone"]),
        (BUDGET, "1 000,50 rub", {"amount": "1000.5", "currency": "RUB"}),
        (BUDGET, {"amount": 10, "currency": "usd"}, {"amount": "10", "currency": "USD"}),
        (BUDGET, "99 ₽", {"amount": "99", "currency": "RUB"}),
        (NOTE, "  Ёлка 🌲 ", "Ёлка 🌲"),
        (PARENT, " 0B7C6C4E-8F0E-4A53-9A8A-1D2B8F1E0A11", "0b7c6c4e-8f0e-4a53-9a8a-1d2b8f1e0a11"),
    ],
)
def test_values_are_read_leniently_and_kept_strictly(
    definition: AttributeDefinition, raw: Any, stored: Any
) -> None:
    assert validate_value(definition, raw) == stored


@pytest.mark.parametrize(
    ("definition", "raw", "message"),
    [
        (SIZE, "много", "not a number"),
        (SIZE, True, "not true/false"),
        (SIZE, float("nan"), "finite"),
        (SIZE, "1" * 30, "digits"),
        (VIP, "может быть", "true or false"),
        (SINCE, "2024-02-30", "a date"),
        (REGION, "Запад", "unknown option 'Запад'"),
        (CHANNELS, "email, fax", "unknown option 'fax'"),
        (BUDGET, "100", "currency"),
        (BUDGET, {"amount": "1.00001", "currency": "RUB"}, "decimal places"),
        (BUDGET, {"amount": "1", "currency": "рубли"}, "ISO 4217"),
        (NOTE, "bad\x00text", "control"),
        (NOTE, "   ", "empty"),
        (NOTE, "x" * 2001, "2000"),
        (PARENT, "not-an-id", "id of a record"),
    ],
)
def test_values_that_do_not_fit_are_refused(
    definition: AttributeDefinition, raw: Any, message: str
) -> None:
    with pytest.raises(AttributeValueError, match=message):
        validate_value(definition, raw)


def test_definitions_are_consistent() -> None:
    base = {"entity_kind": "organization", "key": "k", "label": "K"}
    with pytest.raises(ValidationError, match="an enum needs its options"):
        AttributeDefinitionDraft.model_validate(base | {"type": "enum"})
    with pytest.raises(ValidationError, match="options must differ"):
        AttributeDefinitionDraft.model_validate(base | {"type": "enum", "options": ["A", "a"]})
    with pytest.raises(ValidationError, match="only enums"):
        AttributeDefinitionDraft.model_validate(base | {"type": "string", "options": ["A"]})
    with pytest.raises(ValidationError, match="reference"):
        AttributeDefinitionDraft.model_validate(base | {"type": "reference"})
    with pytest.raises(ValidationError):
        AttributeDefinitionDraft.model_validate(base | {"type": "string", "key": "Bad Key"})
    with pytest.raises(ValidationError):
        AttributeDefinitionDraft.model_validate(base | {"type": "colour"})
    with pytest.raises(ValueError, match="options"):
        patch_definition(REGION, AttributeDefinitionPatch(options=[]))
    assert patch_definition(REGION, AttributeDefinitionPatch(archived=True)).archived


def test_a_patch_merges_clears_and_reports_every_problem() -> None:
    current = {"region": "Юг", "size": 3}
    patched = apply_attribute_patch(
        DEFS, current, {"size": None, "vip": "да", "budget": "5 EUR"}, creating=False
    )
    assert patched == {"budget": {"amount": "5", "currency": "EUR"}, "region": "Юг", "vip": True}
    with pytest.raises(AttributeErrors) as caught:
        apply_attribute_patch(DEFS, current, {"colour": "red", "region": "Запад"}, creating=False)
    assert {error["loc"] for error in caught.value.errors} == {
        ("attributes", "colour"),
        ("attributes", "region"),
    }
    assert apply_attribute_patch(DEFS, current, None, creating=False) == {}


def test_required_and_archived_attributes() -> None:
    required = _def("inn_group", "string", required=True)
    archived = _def("old", "string", archived=True)
    defs = {"inn_group": required, "old": archived}
    with pytest.raises(AttributeErrors, match="not valid") as caught:
        apply_attribute_patch(defs, {}, {}, creating=True)
    assert caught.value.errors[0]["type"] == "missing"
    kept = apply_attribute_patch(defs, {"inn_group": "A", "old": "x"}, {}, creating=False)
    assert kept == {"inn_group": "A", "old": "x"}  # archived values stay
    with pytest.raises(AttributeErrors) as caught:
        apply_attribute_patch(defs, kept, {"old": "y", "inn_group": None}, creating=False)
    assert [e["type"] for e in caught.value.errors] == ["archived", "required"]
    assert apply_attribute_patch(defs, kept, {"old": None}, creating=False) == {"inn_group": "A"}


def test_changes_are_named_per_attribute() -> None:
    assert attribute_changes({"a": 1, "b": [1]}, {"a": 2, "b": [1], "c": "x"}) == {
        "attributes.a": {"old": 1, "new": 2},
        "attributes.c": {"old": None, "new": "x"},
    }


def test_conditions_fit_the_type() -> None:
    assert normalized_condition(SIZE, {"gte": "10", "lte": 20}) == {"gte": 10, "lte": 20}
    assert normalized_condition(REGION, {"in": ["север"]}) == {"in": ["Север"]}
    assert normalized_condition(CHANNELS, {"contains": "EMAIL"}) == {"contains": "email"}
    assert normalized_condition(CHANNELS, {"in": ["visit"]}) == {"in": ["visit"]}
    assert normalized_condition(BUDGET, {"gte": 100}) == {"gte": {"amount": "100"}}
    assert normalized_condition(BUDGET, {"gte": "100 RUB"}) == {
        "gte": {"amount": "100", "currency": "RUB"}
    }
    assert normalized_condition(SINCE, {"gte": "01.01.2024"}) == {"gte": "2024-01-01"}
    with pytest.raises(AttributeValueError, match="does not apply"):
        normalized_condition(VIP, {"gte": True})
    with pytest.raises(AttributeValueError, match="unknown option"):
        normalized_condition(REGION, {"eq": "Запад"})
    with pytest.raises(AttributeValueError, match="give an operator"):
        normalized_condition(REGION, {})
