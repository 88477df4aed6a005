"""The directory's events in the read models and what they mean for deals; the kanban board."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_shared.events.catalog import DEALS
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    EmployeeUpdated,
    OrganizationBlocked,
    OrganizationCreated,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationUnblocked,
    OrganizationUpdated,
    PersonMerged,
)
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Доска", "directions": ["north", "west"], "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(["north", "west"]), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(
    stack: Stack, pipeline: dict[str, Any], client: uuid.UUID, **extra: Any
) -> dict[str, Any]:
    directions = extra.get("directions", NORTH)
    body = {"pipeline_id": pipeline["id"], "organization_id": str(client), "title": "Сделка"}
    response = stack.call("POST", "/v1/deals", stack.user(directions), json={**body, **extra})
    assert response.status_code == 201, response.text
    return response.json()


def _column_flag(stack: Stack, deal_id: str, column: str) -> Any:
    return stack.scalar(f"SELECT {column} FROM deals WHERE id = :id", id=uuid.UUID(deal_id))


def test_blocking_flags_open_deals(stack: Stack, pipeline: dict[str, Any]) -> None:
    client = stack.organization(NORTH)
    open_deal = _deal(stack, pipeline, client)
    won_deal = _deal(stack, pipeline, client)
    won_stage = pipeline["stages"][2]["id"]
    response = stack.call(
        "POST",
        f"/v1/deals/{won_deal['id']}/move",
        stack.user(NORTH),
        if_match=1,
        json={"stage_id": won_stage},
    )
    assert response.status_code == 200
    entry = uuid.uuid4()
    blocked = OrganizationBlocked(
        organization_id=client, entry_id=entry, basis="inn", reason="суд", decided_by="sec"
    )
    stack.publish("organization", "directory.organization.blocked", blocked, client)
    stack.wait_until(
        "SELECT client_blocked FROM deals WHERE id = :id",
        True,
        "the open deal flagged",
        id=uuid.UUID(open_deal["id"]),
    )
    assert _column_flag(stack, won_deal["id"], "client_blocked") is False
    reopened = stack.call(
        "POST",
        f"/v1/deals/{won_deal['id']}/move",
        stack.user(NORTH),
        if_match=2,
        json={"stage_id": pipeline["stages"][0]["id"]},
    )
    assert reopened.json()["client_blocked"] is True
    got = stack.call("GET", f"/v1/deals/{open_deal['id']}", stack.user(NORTH)).json()
    assert got["client_blocked"] is True
    refused = stack.call(
        "POST",
        "/v1/deals",
        stack.user(NORTH),
        json={"pipeline_id": pipeline["id"], "organization_id": str(client), "title": "Ещё"},
    )
    assert refused.status_code == 409
    unblocked = OrganizationUnblocked(organization_id=client, entry_id=entry)
    stack.publish("organization", "directory.organization.unblocked", unblocked, client)
    stack.wait_until(
        "SELECT client_blocked FROM deals WHERE id = :id",
        False,
        "the flag cleared",
        id=uuid.UUID(open_deal["id"]),
    )


def test_deleted_client_hides_deals_until_restored(stack: Stack, pipeline: dict[str, Any]) -> None:
    client = stack.organization(NORTH)
    deal = _deal(stack, pipeline, client)
    north = stack.user(NORTH)
    deleted = OrganizationDeleted(organization_id=client, version=2)
    stack.publish("organization", "directory.organization.deleted", deleted, client)
    stack.wait_until(
        "SELECT client_hidden FROM deals WHERE id = :id", True, "hidden", id=uuid.UUID(deal["id"])
    )
    assert stack.call("GET", f"/v1/deals/{deal['id']}", north).status_code == 404
    board = stack.call("GET", f"/v1/pipelines/{pipeline['id']}/board", north).json()
    assert deal["id"] not in {d["id"] for c in board["columns"] for d in c["deals"]}
    restored = OrganizationRestored(organization_id=client, version=3)
    stack.publish("organization", "directory.organization.restored", restored, client)
    stack.wait_until(
        "SELECT client_hidden FROM deals WHERE id = :id", False, "shown", id=uuid.UUID(deal["id"])
    )
    assert stack.call("GET", f"/v1/deals/{deal['id']}", north).status_code == 200


def test_merged_client_deals_move_to_the_survivor(stack: Stack, pipeline: dict[str, Any]) -> None:
    survivor, merged = stack.organization(NORTH), stack.organization(NORTH)
    deal = _deal(stack, pipeline, merged)
    event = OrganizationMerged(
        survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
    )
    stack.publish("organization", "directory.organization.merged", event, survivor)
    stack.wait_until(
        "SELECT organization_id FROM deals WHERE id = :id",
        survivor,
        "the deal on the survivor",
        id=uuid.UUID(deal["id"]),
    )
    got = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(NORTH))
    assert got.headers["ETag"] == 'W/"2"'
    audit = stack.call("GET", f"/v1/deals/{deal['id']}/audit", stack.user(NORTH)).json()
    assert audit[-1]["action"] == "client_merged"
    assert audit[-1]["actor_kind"] == "user"  # the directory's actor, carried by the event
    changed = stack.events(DEALS, {deal["id"]}, 2)[-1]
    assert changed.type == "pipeline.deal.changed"
    assert changed.payload["changes"]["organization_id"]["new"] == str(survivor)
    assert (
        stack.scalar("SELECT merged_into FROM organizations WHERE organization_id = :id", id=merged)
        == survivor
    )


def test_an_older_version_never_overwrites_a_newer(stack: Stack) -> None:
    client = stack.organization(NORTH, name="Старое")
    update = OrganizationUpdated(
        organization_id=client,
        version=3,
        changes={"legal_name": FieldChange(old="Старое", new="Новое")},
    )
    stack.publish("organization", "directory.organization.updated", update, client)
    query = "SELECT legal_name FROM organizations WHERE organization_id = :id"
    stack.wait_until(query, "Новое", "the update", id=client)
    replay = OrganizationCreated(
        organization_id=client, legal_name="Старое", status="active", directions=NORTH
    )
    stack.publish("organization", "directory.organization.created", replay, client)
    after = OrganizationUpdated(  # same key, same partition: applied after the replay
        organization_id=client,
        version=4,
        changes={"short_name": FieldChange(old=None, new="Н")},
    )
    stack.publish("organization", "directory.organization.updated", after, client)
    stack.wait_until(
        "SELECT version FROM organizations WHERE organization_id = :id", 4, "v4", id=client
    )
    assert stack.scalar(query, id=client) == "Новое"


def test_employee_changes_decide_who_may_be_responsible(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    client = stack.organization(NORTH)
    seller = stack.employee(["west"])
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(client),
        "title": "С ответственным",
        "responsible_employee_id": str(seller),
    }
    assert stack.call("POST", "/v1/deals", stack.user(NORTH), json=body).status_code == 422
    moved = EmployeeUpdated(
        employee_id=seller,
        version=2,
        changes={"directions": FieldChange(old=["west"], new=["north", "west"])},
    )
    stack.publish("employee", "directory.employee.updated", moved, seller)
    stack.wait_until(
        "SELECT version FROM employees WHERE employee_id = :id", 2, "the update", id=seller
    )
    assert stack.call("POST", "/v1/deals", stack.user(NORTH), json=body).status_code == 201


def test_board_counts_sums_filters_and_pages(stack: Stack) -> None:
    north = stack.user(["north", "west"])
    body = {"name": "Канбан", "directions": ["north", "west"], "stages": DEFAULT_STAGES}
    pipeline = stack.call("POST", "/v1/pipelines", north, json=body).json()
    client = stack.organization(["north", "west"], name="ООО «Василёк»")
    seller = stack.employee(NORTH)
    first, second = pipeline["stages"][0]["id"], pipeline["stages"][1]["id"]
    for index in range(5):
        _deal(stack, pipeline, client, amount=f"{index + 1}00.00", currency="RUB", tags=["a"])
    _deal(stack, pipeline, client, amount="50.25", currency="EUR", stage_id=second)
    _deal(
        stack,
        pipeline,
        client,
        title="Западная сделка",
        amount="7",
        currency="RUB",
        directions=["west"],
        responsible_employee_id=None,
    )
    _deal(
        stack,
        pipeline,
        client,
        title="Особая",
        responsible_employee_id=str(seller),
        expected_close_date="2027-01-15",
    )
    path = f"/v1/pipelines/{pipeline['id']}/board"
    board = stack.call("GET", path, north, params={"limit": 2}).json()
    columns = {c["stage"]["id"]: c for c in board["columns"]}
    assert [c["stage"]["name"] for c in board["columns"]] == [s["name"] for s in DEFAULT_STAGES]
    assert columns[first]["count"] == 7
    assert {(t["currency"], t["amount"]) for t in columns[first]["totals"]} == {
        ("RUB", "1507.00"),
        (None, None),
    }
    assert columns[second]["totals"] == [{"currency": "EUR", "amount": "50.25", "count": 1}]
    assert len(columns[first]["deals"]) == 2
    seen = [d["id"] for d in columns[first]["deals"]]
    cursor = columns[first]["next_cursor"]
    while cursor:
        page = stack.call(
            "GET", path, north, params={"limit": 2, "stage_id": first, "cursor": cursor}
        ).json()
        [column] = page["columns"]
        seen += [d["id"] for d in column["deals"]]
        cursor = column["next_cursor"]
    assert len(seen) == len(set(seen)) == 7
    only_north = stack.call("GET", path, stack.user(NORTH)).json()
    assert only_north["columns"][0]["count"] == 6
    filtered = {
        "responsible_employee_id": str(seller),
    }
    assert stack.call("GET", path, north, params=filtered).json()["columns"][0]["count"] == 1
    assert stack.call("GET", path, north, params={"tag": "a"}).json()["columns"][0]["count"] == 5
    ranged = {"amount_min": "150", "amount_max": "400"}
    assert stack.call("GET", path, north, params=ranged).json()["columns"][0]["count"] == 3
    dated = {"close_from": "2027-01-01", "close_to": "2027-01-31"}
    assert stack.call("GET", path, north, params=dated).json()["columns"][0]["count"] == 1
    assert stack.call("GET", path, north, params={"q": "запад"}).json()["columns"][0]["count"] == 1
    assert (
        stack.call("GET", path, north, params={"q": "василёк"}).json()["columns"][0]["count"] == 7
    )
    assert (
        stack.call("GET", path, north, params={"direction": "west"}).json()["columns"][0]["count"]
        == 1
    )
    bad = stack.call("GET", path, north, params={"stage_id": first, "cursor": "!!"})
    assert bad.status_code == 422
    assert stack.call("GET", path, north, params={"cursor": cursor or "x"}).status_code == 422
    assert stack.call("GET", path, north, params={"amount_min": "-1"}).status_code == 422
    assert stack.call("GET", path, stack.user(["south"])).status_code == 404


def test_stored_totals_follow_every_change(stack: Stack) -> None:
    """The trigger-kept totals of an unfiltered board equal a live aggregate (forced by a
    text filter every deal matches) after creates, patches, moves, deletes and a hidden client."""
    north = stack.user(NORTH)
    body = {"name": "Итоги", "directions": NORTH, "stages": DEFAULT_STAGES}
    pipeline = stack.call("POST", "/v1/pipelines", north, json=body).json()
    client, other = stack.organization(NORTH), stack.organization(NORTH)
    deals = [
        _deal(stack, pipeline, client, title="Итог", amount=f"{n}.25", currency="RUB")
        for n in range(1, 5)
    ]
    extra = _deal(stack, pipeline, other, title="Итог", amount="1000", currency="USD")
    _deal(stack, pipeline, client, title="Итог")
    first, second = deals[0]["id"], deals[1]["id"]
    talks = pipeline["stages"][1]["id"]
    patch = {"amount": "2", "currency": "EUR"}
    assert (
        stack.call("PATCH", f"/v1/deals/{first}", north, if_match=1, json=patch).status_code == 200
    )
    move = {"stage_id": talks}
    assert (
        stack.call("POST", f"/v1/deals/{second}/move", north, if_match=1, json=move).status_code
        == 200
    )
    assert stack.call("DELETE", f"/v1/deals/{deals[2]['id']}", north, if_match=1).status_code == 204
    stack.publish(
        "organization",
        "directory.organization.deleted",
        OrganizationDeleted(organization_id=other, version=2),
        other,
    )
    stack.wait_until(
        "SELECT client_hidden FROM deals WHERE id = :id", True, "hidden", id=uuid.UUID(extra["id"])
    )
    path = f"/v1/pipelines/{pipeline['id']}/board"
    stored = stack.call("GET", path, north).json()["columns"]
    live = stack.call("GET", path, north, params={"q": "Итог"}).json()["columns"]
    assert [(c["count"], c["totals"]) for c in stored] == [(c["count"], c["totals"]) for c in live]
    totals = {c["stage"]["id"]: c for c in stored}
    assert totals[talks]["totals"] == [{"currency": "RUB", "amount": "2.25", "count": 1}]
    assert sorted(
        (t["currency"] or "", t["amount"]) for t in totals[pipeline["stages"][0]["id"]]["totals"]
    ) == [("", None), ("EUR", "2.00"), ("RUB", "4.25")]


def test_merged_person_is_replaced_by_the_survivor(stack: Stack, pipeline: dict[str, Any]) -> None:
    client = stack.organization(NORTH)
    survivor, merged, other = stack.person(NORTH), stack.person(NORTH), stack.person(NORTH)
    people = [str(merged), str(other), str(survivor)]
    deal = _deal(stack, pipeline, client, person_ids=people, primary_person_id=str(merged))
    event = PersonMerged(
        survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
    )
    stack.publish("person", "directory.person.merged", event, survivor)
    stack.wait_until(
        "SELECT version FROM deals WHERE id = :id",
        2,
        "the deal re-pointed",
        id=uuid.UUID(deal["id"]),
    )
    got = stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(NORTH)).json()
    assert got["person_ids"] == [str(survivor), str(other)]
    assert got["primary_person_id"] == str(survivor)
    audit = stack.call("GET", f"/v1/deals/{deal['id']}/audit", stack.user(NORTH)).json()
    assert audit[-1]["action"] == "person_merged"
    assert audit[-1]["changes"]["primary_person_id"] == {"old": str(merged), "new": str(survivor)}


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\x00b"},
        {"tag": "\x00"},
        {"direction": "No Such!"},
        {"responsible_employee_id": "nope"},
        {"close_from": "2027-13-01"},
        {"amount_max": "1e400"},
        {"limit": "0"},
        {"stage_id": str(uuid.uuid4())},
    ],
)
def test_bad_board_queries_are_problems(
    stack: Stack, pipeline: dict[str, Any], params: dict[str, str]
) -> None:
    response = stack.call(
        "GET", f"/v1/pipelines/{pipeline['id']}/board", stack.user(NORTH), params=params
    )
    assert response.status_code in (404, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_the_openapi_document_renders(stack: Stack) -> None:
    response = stack.call("GET", "/openapi.json", {})
    assert response.status_code == 200
    assert "/v1/deals/{deal_id}/move" in response.json()["paths"]
