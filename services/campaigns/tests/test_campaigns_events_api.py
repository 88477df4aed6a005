"""Marketing events over HTTP: fields, responsible employee, status, directions, ETags, audit,
soft delete, events published; their budget and stages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from campaigns_testkit import Stack, create_event, event_body
from clientele_shared.events.catalog import CAMPAIGN_EVENTS

NORTH = ["north"]


def test_create_read_list_with_default_stages(stack: Stack) -> None:
    employee = stack.employee(NORTH)
    start = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid.uuid4().int % 10**8)
    event = create_event(
        stack,
        responsible_employee_id=str(employee),
        planned_start=start.isoformat(),
        planned_end=(start + timedelta(hours=8)).isoformat(),
    )
    window = {"from": start.isoformat(), "to": (start + timedelta(seconds=1)).isoformat()}
    assert [s["name"] for s in event["stages"]] == [
        "Подготовка",
        "Приглашения",
        "Мероприятие",
        "Постобработка",
    ]
    assert event["status"] == "planned"
    assert datetime.fromisoformat(event["planned_start"]) == start
    read = stack.call("GET", f"/v1/campaigns/{event['id']}", stack.user(NORTH))
    assert read.status_code == 200
    assert read.json() == event
    listed = stack.call("GET", "/v1/campaigns", stack.user(NORTH), params=window).json()
    assert event["id"] in {e["id"] for e in listed}
    south = stack.call("GET", "/v1/campaigns", stack.user(["south"]), params=window).json()
    assert event["id"] not in {e["id"] for e in south}
    naive = stack.call("GET", "/v1/campaigns", stack.user(NORTH), params={"from": "2026-01-01"})
    assert naive.status_code == 422


def test_responsible_employee_checked(stack: Stack) -> None:
    north = stack.user(NORTH)
    for employee_id, kind in [
        (str(uuid.uuid4()), "unknown_reference"),
        (str(stack.employee(["south"])), "direction_mismatch"),
        (str(stack.employee(NORTH, active=False)), "unknown_reference"),
    ]:
        body = event_body(NORTH, responsible_employee_id=employee_id)
        response = stack.call("POST", "/v1/campaigns", north, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["type"] == kind
    event = create_event(stack)
    response = stack.call(
        "PATCH",
        f"/v1/campaigns/{event['id']}",
        north,
        if_match=1,
        json={"responsible_employee_id": str(stack.employee(["south"]))},
    )
    assert response.status_code == 422


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "party"},
        {"status": "finished"},
        {"planned_start": "2026-03-10T10:00:00"},
        {"planned_end": "2026-03-09T10:00:00+03:00"},
        {"title": "Семинар\u0000"},
        {"title": ""},
        {"directions": []},
        {"actual_end": "2026-03-10T18:00:00+03:00"},
        {"goals": ["x"] * 21},
        {"unknown": 1},
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(stack: Stack, change: dict[str, Any]) -> None:
    north = stack.user(NORTH)
    title = f"Плохое {uuid.uuid4()}"
    response = stack.call(
        "POST", "/v1/campaigns", north, json={**event_body(title=title), **change}
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stack.scalar("SELECT count(*) FROM marketing_events WHERE title = :t", t=title) == 0
    event = create_event(stack)
    response = stack.call("PATCH", f"/v1/campaigns/{event['id']}", north, if_match=1, json=change)
    assert response.status_code == 422, response.text
    assert stack.call("GET", f"/v1/campaigns/{event['id']}", north).json() == event


def test_if_match_status_transitions_audit_and_events(stack: Stack) -> None:
    event = create_event(stack)
    path = f"/v1/campaigns/{event['id']}"
    north = stack.user(NORTH)
    assert stack.call("PATCH", path, north, json={"status": "preparing"}).status_code == 428
    assert stack.call("PATCH", path, north, if_match=7, json={"title": "x"}).status_code == 412
    changed = stack.call("PATCH", path, north, if_match=1, json={"status": "running"})
    assert changed.status_code == 200, changed.text
    assert changed.headers["ETag"] == 'W/"2"'
    refused = stack.call("PATCH", path, north, if_match=2, json={"status": "planned"})
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/status-transition")
    done = stack.call(
        "PATCH",
        path,
        north,
        if_match=2,
        json={
            "status": "done",
            "actual_start": "2026-03-10T10:05:00+03:00",
            "actual_end": "2026-03-10T17:40:00+03:00",
        },
    )
    assert done.status_code == 200, done.text
    same = stack.call("PATCH", path, north, if_match=3, json={"status": "done"})
    assert same.status_code == 200
    assert same.headers["ETag"] == 'W/"3"'
    audit = stack.call("GET", f"{path}/audit", north).json()
    assert [entry["action"] for entry in audit] == ["created", "updated", "updated"]
    assert audit[1]["changes"]["status"] == {"old": "planned", "new": "running"}
    assert audit[2]["actor_subject"] == "alice"
    events = stack.events(CAMPAIGN_EVENTS, {event["id"]}, 3)
    assert [e.type for e in events] == [
        "campaigns.campaign.created",
        "campaigns.campaign.changed",
        "campaigns.campaign.changed",
    ]
    assert events[0].payload["title"] == "Семинар для дилеров"
    assert events[2].payload["changes"]["status"] == {"old": "running", "new": "done"}


def test_soft_delete_and_restore(stack: Stack) -> None:
    event = create_event(stack)
    path = f"/v1/campaigns/{event['id']}"
    north = stack.user(NORTH)
    deleted = stack.call("DELETE", path, north, if_match=1)
    assert deleted.status_code == 204
    assert stack.call("GET", path, north).status_code == 404
    assert stack.call("GET", f"{path}?include_deleted=true", north).status_code == 200
    listed = stack.call("GET", "/v1/campaigns?deleted=true", north).json()
    assert event["id"] in {e["id"] for e in listed}
    restored = stack.call("POST", f"{path}/restore", north, if_match=2)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert stack.call("POST", f"{path}/restore", north, if_match=3).status_code == 409
    types = [e.type for e in stack.events(CAMPAIGN_EVENTS, {event["id"]}, 3)]
    assert types[1:] == ["campaigns.campaign.deleted", "campaigns.campaign.restored"]


def test_other_direction_404_on_reads_and_writes_403(stack: Stack) -> None:
    event = create_event(stack)
    south = stack.user(["south"])
    base = f"/v1/campaigns/{event['id']}"
    stage = event["stages"][0]["id"]
    participant = str(uuid.uuid4())
    for method, path, body in [
        ("GET", base, None),
        ("GET", f"{base}/audit", None),
        ("PATCH", base, {"title": "x"}),
        ("DELETE", base, None),
        ("POST", f"{base}/restore", None),
        ("GET", f"{base}/budget", None),
        ("PUT", f"{base}/budget", {"lines": []}),
        ("POST", f"{base}/stages", {"name": "x"}),
        ("PATCH", f"{base}/stages/{stage}", {"name": "x"}),
        ("PUT", f"{base}/stages/order", {"stage_ids": [stage]}),
        ("DELETE", f"{base}/stages/{stage}", None),
        ("GET", f"{base}/participants", None),
        ("POST", f"{base}/participants", {"participants": [{"organization_id": participant}]}),
        ("GET", f"{base}/participants/refusals", None),
        ("GET", f"{base}/participants/{participant}", None),
        ("PATCH", f"{base}/participants/{participant}", {"status": "confirmed"}),
        ("GET", f"{base}/participants/{participant}/history", None),
        ("GET", f"{base}/participants/{participant}/audit", None),
        (
            "POST",
            f"{base}/participants/bulk-update",
            {"participant_ids": [participant], "status": "attended"},
        ),
        (
            "POST",
            f"{base}/participants/move",
            {"participant_ids": [participant], "to_stage_id": stage},
        ),
        ("GET", f"{base}/effectiveness", None),
        ("GET", f"{base}/list-resolutions", None),
        ("POST", f"{base}/list-resolutions", {"list_id": participant}),
        ("GET", f"{base}/list-resolutions/{participant}/members", None),
        ("GET", f"{base}/registrations", None),
        ("POST", f"{base}/check-in", {"code": "A" * 16}),
    ]:
        response = stack.call(method, path, south, if_match=1, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    response = stack.call("POST", "/v1/campaigns", south, json=event_body(NORTH))
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden-direction")
    both = create_event(stack, ["north", "west"])
    for method, path, body in [
        ("PATCH", f"/v1/campaigns/{both['id']}", {"title": "y"}),
        ("PUT", f"/v1/campaigns/{both['id']}/budget", {"lines": []}),
        ("POST", f"/v1/campaigns/{both['id']}/stages", {"name": "Ещё"}),
    ]:
        response = stack.call(method, path, stack.user(NORTH), if_match=1, json=body)
        assert response.status_code == 403, (method, path, response.text)
    moved = stack.call(
        "PATCH",
        f"/v1/campaigns/{event['id']}",
        stack.user(NORTH),
        if_match=1,
        json={"directions": ["south"]},
    )
    assert moved.status_code == 403


def _line(**fields: Any) -> dict[str, Any]:
    return {"category": "venue", "currency": "RUB", **fields}


def test_budget_lines_and_totals_per_currency(stack: Stack) -> None:
    event = create_event(stack)
    path = f"/v1/campaigns/{event['id']}/budget"
    north = stack.user(NORTH)
    empty = stack.call("GET", path, north)
    assert empty.json()["lines"] == []
    assert empty.json()["totals"] == []
    lines = [
        _line(planned="100000", actual="95000.50"),
        _line(category="catering", planned="30000.00", actual="31000"),
        _line(category="printing", currency="EUR", planned="200", actual="180.25"),
        _line(category="consumables", actual="1500", quantity="3", unit="пачка бумаги"),
        _line(category="staff_time", planned="20000"),
    ]
    assert stack.call("PUT", path, north, json={"lines": lines}).status_code == 428
    response = stack.call("PUT", path, north, if_match=1, json={"lines": lines})
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == 'W/"2"'
    budget = response.json()
    assert budget["totals"] == [
        {"currency": "EUR", "planned": "200.00", "actual": "180.25"},
        {"currency": "RUB", "planned": "150000.00", "actual": "127500.50"},
    ]
    assert [line["category"] for line in budget["lines"]] == [
        "venue",
        "catering",
        "printing",
        "consumables",
        "staff_time",
    ]
    assert budget["lines"][3]["quantity"] == "3.000"
    same = stack.call("PUT", path, north, if_match=2, json={"lines": lines})
    assert same.headers["ETag"] == 'W/"2"'
    audit = stack.call("GET", f"/v1/campaigns/{event['id']}/audit", north).json()
    assert audit[-1]["action"] == "budget_changed"
    assert audit[-1]["changes"]["budget"]["old"] == []
    assert stack.call("PUT", path, north, if_match=1, json={"lines": []}).status_code == 412


@pytest.mark.parametrize(
    "bad",
    [
        _line(currency="XYZ", planned="1"),
        _line(currency="rub", planned="1"),
        _line(planned="-1"),
        _line(planned="1.001"),
        _line(planned="NaN"),
        _line(category="bribes", planned="1"),
        _line(),
        _line(planned="1", quantity="2"),
        _line(planned="1", description="бумага\u0000"),
    ],
)
def test_bad_budget_line_writes_nothing(stack: Stack, bad: dict[str, Any]) -> None:
    event = create_event(stack)
    path = f"/v1/campaigns/{event['id']}/budget"
    north = stack.user(NORTH)
    first = stack.call("PUT", path, north, if_match=1, json={"lines": [_line(planned="5")]})
    assert first.status_code == 200
    response = stack.call("PUT", path, north, if_match=2, json={"lines": [_line(planned="7"), bad]})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    budget = stack.call("GET", path, north)
    assert budget.headers["ETag"] == 'W/"2"'
    assert [line["planned"] for line in budget.json()["lines"]] == ["5.00"]


def test_stages_editable_per_event(stack: Stack) -> None:
    event = create_event(stack, stages=["Анонс", "Мероприятие"])
    base = f"/v1/campaigns/{event['id']}/stages"
    north = stack.user(NORTH)
    added = stack.call(
        "POST", base, north, if_match=1, json={"name": "Итоги", "due_date": "2026-03-20"}
    )
    assert added.status_code == 201, added.text
    stages = added.json()["stages"]
    assert [s["name"] for s in stages] == ["Анонс", "Мероприятие", "Итоги"]
    assert stages[2]["due_date"] == "2026-03-20"
    duplicate = stack.call("POST", base, north, if_match=2, json={"name": "итоги"})
    assert duplicate.status_code == 422
    renamed = stack.call(
        "PATCH", f"{base}/{stages[0]['id']}", north, if_match=2, json={"name": "Приглашения"}
    )
    assert renamed.status_code == 200
    order = [stages[2]["id"], stages[0]["id"], stages[1]["id"]]
    reordered = stack.call("PUT", f"{base}/order", north, if_match=3, json={"stage_ids": order})
    assert [s["id"] for s in reordered.json()["stages"]] == order
    partial = stack.call("PUT", f"{base}/order", north, if_match=4, json={"stage_ids": order[:2]})
    assert partial.status_code == 422
    deleted = stack.call("DELETE", f"{base}/{stages[2]['id']}", north, if_match=4)
    assert deleted.status_code == 200
    assert [s["name"] for s in deleted.json()["stages"]] == ["Приглашения", "Мероприятие"]
    audit = stack.call("GET", f"/v1/campaigns/{event['id']}/audit", north).json()
    assert [e["action"] for e in audit[1:]] == [
        "stage_added",
        "stage_changed",
        "stages_reordered",
        "stage_deleted",
    ]
    unknown = stack.call("PATCH", f"{base}/{uuid.uuid4()}", north, if_match=5, json={"name": "x"})
    assert unknown.status_code == 404
