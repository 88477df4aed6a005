"""The pipeline's rules without infrastructure: money, product lines, patches, playbooks,
stages, cursors, read-model folding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from clientele_pipeline.board.rules import DealCard, decode_cursor, encode_cursor
from clientele_pipeline.deals.rules import (
    DealFields,
    DealPatch,
    ProductLine,
    changes_between,
    missing_fields,
    patched_fields,
    status_of,
)
from clientele_pipeline.pipelines.rules import PipelineDraft, Stage, StageRejected
from clientele_pipeline.stages.rules import StagePatch, check_reorder, stage_changes
from clientele_shared.directory_read_models import organization_created, organization_updated
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import OrganizationCreated, OrganizationUpdated
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError


def test_a_line_total_is_quantity_times_price_less_discount_rounded_half_up() -> None:
    line = ProductLine(
        name="x", quantity=Decimal("3"), price=Decimal("33.33"), discount=Decimal("5")
    )
    assert line.total() == Decimal("94.99")  # 94.9905
    assert ProductLine(name="y", quantity=Decimal("0.5"), price=Decimal("0.01")).total() == Decimal(
        "0.01"
    )


def test_products_drive_the_amount_and_need_a_currency() -> None:
    lines = [
        {"name": "a", "quantity": "2", "price": "10.50"},
        {"name": "b", "quantity": "1", "price": "1"},
    ]
    fields = DealFields(title="t", currency="RUB", products=lines, amount_from_products=True)  # type: ignore[arg-type]
    assert fields.amount == Decimal("22.00")
    with pytest.raises(ValidationError, match="differs"):
        DealFields(
            title="t", currency="RUB", amount=Decimal(5), products=lines, amount_from_products=True
        )  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="currency"):
        DealFields(title="t", products=lines)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "values",
    [
        {"currency": "XYZ", "amount": "1"},
        {"currency": "RUB", "amount": "0.001"},
        {"currency": "RUB", "amount": "-0.01"},
        {"currency": "RUB", "amount": "Infinity"},
        {"title": "tab\there"},
        {"title": "\u0000"},
        {"title": "   "},
        {"tags": ["a\u0007"]},
        {"custom_fields": {"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}},
        {"custom_fields": {"k\u0000": 1}},
        {"custom_fields": {"k": "x" * 20_000}},
        {"person_ids": [str(uuid.uuid4())], "primary_person_id": str(uuid.uuid4())},
    ],
)
def test_invalid_deal_fields(values: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        DealFields.model_validate({"title": "t", **values})


def test_the_first_contact_is_primary_unless_told() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    fields = DealFields(title="t", person_ids=[first, second, first])
    assert fields.person_ids == [first, second]
    assert fields.primary_person_id == first


def test_a_merge_patch_sets_clears_and_revalidates() -> None:
    current = DealFields(title="t", amount=Decimal(10), currency="EUR", tags=["a"])
    patch = DealPatch.model_validate({"tags": None, "amount": "12.5"})
    patched = patched_fields(current, patch)
    assert patched.tags == []
    assert patched.amount == Decimal("12.5")
    assert changes_between(current, patched) == {
        "amount": {"old": "10", "new": "12.5"},
        "tags": {"old": ["a"], "new": []},
    }
    with pytest.raises(ValidationError):
        patched_fields(current, DealPatch.model_validate({"currency": None}))
    primary = uuid.uuid4()
    with_people = DealFields(title="t", person_ids=[primary, uuid.uuid4()])
    dropped = patched_fields(with_people, DealPatch.model_validate({"person_ids": []}))
    assert dropped.primary_person_id is None


def test_the_playbook_names_what_is_missing() -> None:
    fields = DealFields(title="t", custom_fields={"need": "yes", "empty": ""})
    required = ["amount", "custom_fields.need", "custom_fields.empty", "source.channel", "tags"]
    assert missing_fields(fields, required) == [
        "amount",
        "custom_fields.empty",
        "source.channel",
        "tags",
    ]
    assert [status_of(kind) for kind in ("open", "monitoring", "won", "lost")] == [
        "open",
        "open",
        "won",
        "lost",
    ]


def test_a_pipeline_needs_distinct_stages_and_a_start() -> None:
    with pytest.raises(ValidationError):
        PipelineDraft.model_validate(
            {"name": "p", "directions": ["n"], "stages": [{"name": "A"}, {"name": "a"}]}
        )
    with pytest.raises(ValidationError):
        PipelineDraft.model_validate(
            {
                "name": "p",
                "directions": ["n"],
                "stages": [{"name": "w", "kind": "won"}, {"name": "l", "kind": "lost"}],
            }
        )
    with pytest.raises(ValidationError):
        PipelineDraft.model_validate(
            {
                "name": "p",
                "directions": ["n"],
                "stages": [{"name": "a", "required_fields": ["id"]}, {"name": "b"}],
            }
        )


def test_stage_changes_and_reorder() -> None:
    stage = Stage(id=uuid.uuid4(), position=0, name="A", probability=10)
    assert stage_changes(stage, StagePatch(name="A", probability=20)) == {
        "probability": {"old": 10, "new": 20}
    }
    with pytest.raises(ValidationError):
        StagePatch.model_validate({"name": None})
    other = Stage(id=uuid.uuid4(), position=1, name="B")
    check_reorder([stage, other], [other.id, stage.id])
    with pytest.raises(StageRejected):
        check_reorder([stage, other], [other.id, other.id])


def test_cursors_round_trip_and_refuse_garbage() -> None:
    card = DealCard(
        id=uuid.uuid4(),
        stage_id=uuid.uuid4(),
        title="t",
        organization_id=uuid.uuid4(),
        status="open",
        tags=[],
        stage_entered_at=datetime.now(UTC),
        client_blocked=False,
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        version=1,
    )
    assert decode_cursor(encode_cursor(card)) == (card.created_at, card.id)
    for garbage in ("", "!!", "bm90IGEgY3Vyc29y"):
        with pytest.raises(RequestValidationError):
            decode_cursor(garbage)


def test_organization_events_fold_into_whole_records() -> None:
    org_id = uuid.uuid4()
    created = organization_created(
        OrganizationCreated(
            organization_id=org_id, legal_name="A", status="active", directions=["s", "n", "n"]
        )
    )
    assert created.directions == ["n", "s"]
    updated = organization_updated(
        created,
        OrganizationUpdated(
            organization_id=org_id,
            version=2,
            changes={
                "legal_name": FieldChange(old="A", new="B"),
                "phones": FieldChange(old=[], new=["+7"]),
            },
            blocked=True,
        ),
    )
    assert (updated.legal_name, updated.blocked, updated.version) == ("B", True, 2)
