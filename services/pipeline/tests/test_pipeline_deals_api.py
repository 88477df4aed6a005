"""Deals over HTTP: references checked against the read models, ETags, audit, soft delete,
stage moves with the playbook and the stage history, events on the deals topic."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from clientele_shared.events.catalog import DEALS
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    stages = [
        {"name": "Новая", "kind": "open", "required_fields": ["amount", "custom_fields.need"]},
        *DEFAULT_STAGES[1:],
    ]
    body = {
        "name": "Продажи",
        "directions": ["north", "west"],
        "stages": stages,
        "lost_reasons": ["Дорого", "Нет бюджета"],
    }
    response = stack.call("POST", "/v1/pipelines", stack.user(["north", "west"]), json=body)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture(scope="module")
def client(stack: Stack) -> uuid.UUID:
    return stack.organization(NORTH)


@pytest.fixture(scope="module")
def seller(stack: Stack) -> uuid.UUID:
    return stack.employee(NORTH)


def _draft(pipeline: dict[str, Any], client: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {
        "pipeline_id": pipeline["id"],
        "organization_id": str(client),
        "title": "Поставка станков",
        **extra,
    }


def _create(stack: Stack, draft: dict[str, Any]) -> dict[str, Any]:
    response = stack.call("POST", "/v1/deals", stack.user(NORTH), json=draft)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_with_people_products_and_source(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID, seller: uuid.UUID
) -> None:
    first, second = stack.person(NORTH), stack.person(NORTH)
    draft = _draft(
        pipeline,
        client,
        currency="RUB",
        person_ids=[str(first), str(second)],
        primary_person_id=str(second),
        responsible_employee_id=str(seller),
        tags=["станки", "Станки", "крупный"],
        custom_fields={"need": "3 станка", "score": 7},
        expected_close_date="2027-03-01",
        source={"channel": "web", "utm_source": "yandex", "campaign_id": str(uuid.uuid4())},
        products=[
            {"name": "Станок", "quantity": "2", "price": "1000000.00", "discount": "10"},
            {"name": "Наладка", "quantity": "1", "price": "50000.50"},
        ],
        amount_from_products=True,
    )
    response = stack.call("POST", "/v1/deals", stack.user(NORTH), json=draft)
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == 'W/"1"'
    deal = response.json()
    assert deal["amount"] == "1850000.50"
    assert deal["stage_id"] == pipeline["stages"][0]["id"]
    assert deal["status"] == "open"
    assert deal["directions"] == ["north"]
    assert deal["tags"] == ["станки", "крупный"]
    assert deal["primary_person_id"] == str(second)
    history = stack.call("GET", f"/v1/deals/{deal['id']}/history", stack.user(NORTH)).json()
    assert [(h["from_stage_id"], h["to_stage_id"]) for h in history] == [
        (None, pipeline["stages"][0]["id"])
    ]
    [created] = stack.events(DEALS, {deal["id"]}, 1)
    assert created.type == "pipeline.deal.created"
    assert created.payload["amount"] == "1850000.50"
    assert created.payload["stage_name"] == "Новая"
    assert created.directions == ("north",)


def test_references_checked(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID, seller: uuid.UUID
) -> None:
    north = stack.user(NORTH)
    before = stack.scalar("SELECT count(*) FROM deals")
    unknown = stack.call("POST", "/v1/deals", north, json=_draft(pipeline, uuid.uuid4()))
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["location"] == ["body", "organization_id"]
    hidden = stack.organization(["south"])
    assert stack.call("POST", "/v1/deals", north, json=_draft(pipeline, hidden)).status_code == 422
    blocked = stack.organization(NORTH, blocked=True)
    refused = stack.call("POST", "/v1/deals", north, json=_draft(pipeline, blocked))
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/counterparty-blocked")
    west_seller = stack.employee(["west"])
    wrong = stack.call(
        "POST",
        "/v1/deals",
        north,
        json=_draft(pipeline, client, responsible_employee_id=str(west_seller)),
    )
    assert wrong.status_code == 422
    assert wrong.json()["errors"][0]["type"] == "direction_mismatch"
    inactive = stack.employee(NORTH, active=False)
    body = _draft(pipeline, client, responsible_employee_id=str(inactive))
    assert stack.call("POST", "/v1/deals", north, json=body).status_code == 422
    body = _draft(pipeline, client, person_ids=[str(uuid.uuid4())])
    assert stack.call("POST", "/v1/deals", north, json=body).status_code == 422
    body = _draft(pipeline, client, directions=["east"])
    assert stack.call("POST", "/v1/deals", north, json=body).status_code == 422
    body = _draft(pipeline, client, directions=["west"])
    assert stack.call("POST", "/v1/deals", north, json=body).status_code == 403
    assert stack.scalar("SELECT count(*) FROM deals") == before


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "extra",
    [
        {"title": "nul\x00byte"},
        {"currency": "RUR", "amount": "10"},
        {"currency": "rub", "amount": "10"},
        {"amount": "10"},
        {"amount": "-1", "currency": "RUB"},
        {"amount": "1.001", "currency": "RUB"},
        {"amount": "NaN", "currency": "RUB"},
        {"products": [{"name": "x", "quantity": "-1", "price": "1"}], "currency": "RUB"},
        {
            "products": [{"name": "x", "quantity": "1", "price": "1", "discount": "101"}],
            "currency": "RUB",
        },
        {
            "amount": "5",
            "amount_from_products": True,
            "currency": "RUB",
            "products": [{"name": "x", "quantity": "1", "price": "1"}],
        },
        {"custom_fields": _nested(10)},
        {"custom_fields": {"k": "a\x00"}},
        {"source": {"channel": "web", "utm_unknown": "x"}},
        {"person_ids": [], "primary_person_id": str(uuid.uuid4())},
        {"stage_id": "not-a-uuid"},
        {"status": "won"},
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID, extra: dict[str, Any]
) -> None:
    before = stack.scalar("SELECT count(*) FROM deals")
    response = stack.call(
        "POST", "/v1/deals", stack.user(NORTH), json=_draft(pipeline, client, **extra)
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stack.scalar("SELECT count(*) FROM deals") == before


def test_deeply_nested_body_is_not_a_500(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID
) -> None:
    nested = '{"a":' * 5000 + "1" + "}" * 5000
    body = json.dumps(_draft(pipeline, client, custom_fields={})).replace(
        '"custom_fields": {}', f'"custom_fields": {nested}'
    )
    response = stack.call(
        "POST",
        "/v1/deals",
        {**stack.user(NORTH), "content-type": "application/json"},
        content=body,
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_patch_audit_delete_restore_and_events(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID
) -> None:
    north = stack.user(NORTH)
    deal = _create(stack, _draft(pipeline, client))
    path = f"/v1/deals/{deal['id']}"
    assert stack.call("PATCH", path, north, json={"title": "x"}).status_code == 428
    patched = stack.call(
        "PATCH",
        path,
        north,
        if_match=1,
        json={"amount": "100.50", "currency": "EUR", "tags": ["a"]},
    )
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == 'W/"2"'
    assert patched.json()["amount"] == "100.50"
    stale = stack.call("PATCH", path, north, if_match=1, json={"title": "y"})
    assert stale.status_code == 412
    invalid = stack.call("PATCH", path, north, if_match=2, json={"currency": None})
    assert invalid.status_code == 422
    assert stack.call("DELETE", path, north, if_match=2).status_code == 204
    assert stack.call("GET", path, north).status_code == 404
    assert stack.call("GET", path, north, params={"include_deleted": True}).status_code == 200
    restored = stack.call("POST", f"{path}/restore", north, if_match=3)
    assert restored.status_code == 200
    assert restored.json()["version"] == 4
    audit = stack.call("GET", f"{path}/audit", north).json()
    assert [entry["action"] for entry in audit] == ["created", "updated", "deleted", "restored"]
    assert audit[1]["changes"]["amount"] == {"old": None, "new": "100.50"}
    assert audit[1]["changes"]["currency"] == {"old": None, "new": "EUR"}
    events = stack.events(DEALS, {deal["id"]}, 4)
    assert [e.type for e in events] == [
        "pipeline.deal.created",
        "pipeline.deal.changed",
        "pipeline.deal.deleted",
        "pipeline.deal.restored",
    ]
    assert events[1].payload["changes"]["tags"] == {"old": [], "new": ["a"]}
    assert [e.payload["version"] for e in events] == [1, 2, 3, 4]


def test_other_direction_404_for_every_deal_endpoint(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID
) -> None:
    deal = _create(stack, _draft(pipeline, client))
    south = stack.user(["south"])
    path = f"/v1/deals/{deal['id']}"
    for method, suffix, body in [
        ("GET", "", None),
        ("GET", "/audit", None),
        ("GET", "/history", None),
        ("PATCH", "", {"title": "x"}),
        ("POST", "/move", {"stage_id": pipeline["stages"][1]["id"]}),
        ("DELETE", "", None),
        ("POST", "/restore", None),
    ]:
        response = stack.call(method, path + suffix, south, if_match=1, json=body)
        assert response.status_code == 404, (method, suffix, response.text)
    listed = stack.call("GET", "/v1/deals", south, params={"pipeline_id": pipeline["id"]}).json()
    assert listed == []
    created = stack.call("POST", "/v1/deals", south, json=_draft(pipeline, client))
    assert created.status_code == 422  # neither the pipeline nor the client is visible


def test_moves_playbook_history_won_lost(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID
) -> None:
    north = stack.user(NORTH)
    new, talks, won, lost = (s["id"] for s in pipeline["stages"])
    deal = _create(stack, _draft(pipeline, client))
    path = f"/v1/deals/{deal['id']}"
    assert stack.call("POST", f"{path}/move", north, json={"stage_id": talks}).status_code == 428
    blocked = stack.call("POST", f"{path}/move", north, if_match=1, json={"stage_id": talks})
    assert blocked.status_code == 422
    missing = sorted(tuple(e["location"]) for e in blocked.json()["errors"])
    assert missing == [("body", "amount"), ("body", "custom_fields", "need")]
    filled = stack.call(
        "PATCH",
        path,
        north,
        if_match=1,
        json={"amount": "10", "currency": "RUB", "custom_fields": {"need": "да"}},
    )
    assert filled.status_code == 200
    moved = stack.call(
        "POST", f"{path}/move", north, if_match=2, json={"stage_id": talks, "reason": "позвонили"}
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["ETag"] == 'W/"3"'
    assert moved.json()["stage_id"] == talks
    again = stack.call("POST", f"{path}/move", north, if_match=3, json={"stage_id": talks})
    assert again.status_code == 409
    no_reason = stack.call("POST", f"{path}/move", north, if_match=3, json={"stage_id": lost})
    assert no_reason.status_code == 422
    bad_reason = stack.call(
        "POST", f"{path}/move", north, if_match=3, json={"stage_id": lost, "lost_reason": "Лень"}
    )
    assert bad_reason.status_code == 422
    closed = stack.call(
        "POST", f"{path}/move", north, if_match=3, json={"stage_id": lost, "lost_reason": "Дорого"}
    )
    assert closed.status_code == 200
    assert closed.json()["status"] == "lost"
    assert closed.json()["lost_reason"] == "Дорого"
    assert closed.json()["closed_at"] is not None
    reopened = stack.call("POST", f"{path}/move", north, if_match=4, json={"stage_id": talks})
    assert reopened.json()["status"] == "open"
    assert reopened.json()["lost_reason"] is None
    winning = stack.call("POST", f"{path}/move", north, if_match=5, json={"stage_id": won})
    assert winning.json()["status"] == "won"
    history = stack.call("GET", f"{path}/history", north).json()
    assert [h["to_stage_id"] for h in history] == [new, talks, lost, talks, won]
    assert history[1]["reason"] == "позвонили"
    assert history[1]["actor_subject"] == "alice"
    assert [h["deal_version"] for h in history] == [1, 3, 4, 5, 6]
    events = stack.events(DEALS, {deal["id"]}, 9)
    assert [e.type for e in events] == [
        "pipeline.deal.created",
        "pipeline.deal.changed",
        "pipeline.deal.stage_changed",
        "pipeline.deal.stage_changed",
        "pipeline.deal.lost",
        "pipeline.deal.stage_changed",
        "pipeline.deal.stage_changed",
        "pipeline.deal.won",
    ]
    assert events[4].payload["lost_reason"] == "Дорого"
    assert events[7].payload["amount"] == "10.00"
    # the history is append-only and a stage that holds deals is not deleted
    response = stack.call(
        "DELETE", f"/v1/pipelines/{pipeline['id']}/stages/{won}", north, if_match=1
    )
    assert response.status_code in (403, 409, 412)


def test_two_identical_moves_one_wins(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID
) -> None:
    north = stack.user(NORTH)
    deal = _create(
        stack, _draft(pipeline, client, amount="1", currency="RUB", custom_fields={"need": "x"})
    )
    talks = pipeline["stages"][1]["id"]

    def move() -> int:
        response = stack.call(
            "POST", f"/v1/deals/{deal['id']}/move", north, if_match=1, json={"stage_id": talks}
        )
        return response.status_code

    with ThreadPoolExecutor(2) as pool:
        codes = sorted(pool.map(lambda _: move(), range(2)))
    assert codes == [200, 412]
    assert (
        stack.scalar(
            "SELECT count(*) FROM deal_stage_history WHERE deal_id = :id", id=uuid.UUID(deal["id"])
        )
        == 2
    )


def test_a_stage_holding_deals_is_archived_not_deleted(stack: Stack, client: uuid.UUID) -> None:
    north = stack.user(NORTH)
    body = {"name": "Короткая", "directions": NORTH, "stages": DEFAULT_STAGES}
    pipeline = stack.call("POST", "/v1/pipelines", north, json=body).json()
    stage = pipeline["stages"][1]["id"]
    _create(stack, {**_draft(pipeline, client), "stage_id": stage})
    path = f"/v1/pipelines/{pipeline['id']}"
    refused = stack.call("DELETE", f"{path}/stages/{stage}", north, if_match=1)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/stage-holds-deals")
    archived = stack.call(
        "PATCH", f"{path}/stages/{stage}", north, if_match=1, json={"archived": True}
    )
    assert archived.status_code == 200
    held = stack.call("DELETE", path, north, if_match=2)
    assert held.status_code == 409


def test_writes_need_every_direction_of_the_deal(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID
) -> None:
    both = stack.user(["north", "west"])
    draft = _draft(pipeline, client, directions=["north", "west"])
    created = stack.call("POST", "/v1/deals", both, json=draft)
    assert created.status_code == 201, created.text
    deal = created.json()
    path = f"/v1/deals/{deal['id']}"
    north = stack.user(NORTH)
    assert stack.call("GET", path, north).status_code == 200
    talks = pipeline["stages"][1]["id"]
    for method, suffix, body in [
        ("PATCH", "", {"title": "x"}),
        ("POST", "/move", {"stage_id": talks}),
        ("DELETE", "", None),
    ]:
        response = stack.call(method, path + suffix, north, if_match=1, json=body)
        assert response.status_code == 403, (method, suffix, response.text)
    officer = stack.user([], roles=["security_officer"], subject="sec")
    assert stack.call("GET", path, officer).status_code == 200
    response = stack.call("PATCH", path, officer, if_match=1, json={"title": "x"})
    assert response.status_code == 403
    assert stack.call("GET", f"{path}/audit", both).json()[-1]["action"] == "created"
