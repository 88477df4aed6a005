"""Tasks over HTTP against the real service: references and directions checked, ETags,
complete and reassign, overdue detection with its event and notice, the hand-over of a
client's tasks from interactions' events, and the secret iCalendar feed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import INTERACTION_LOG, REGISTRY, TASKS
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.directory import OrganizationMerged
from clientele_shared.events.schemas.interactions import ResponsibilityHandedOver
from clientele_shared.events.topics import PIPELINE, notification_requests
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import running
from icalendar import Calendar
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]
NOTIFICATIONS = notification_requests(PIPELINE)


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    pipeline_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The service with a quick overdue scan."""
    env = {**service_env, "TASK_OVERDUE_INTERVAL": "0.3"}
    logs = tmp_path_factory.mktemp("pipeline-tasks")
    with running("pipeline", infra, env, pipeline_migrated, issuer, logs) as started:
        yield started


@pytest.fixture(scope="module")
def deal(stack: Stack) -> dict[str, Any]:
    body = {"name": "Задачи", "directions": ["north", "west"], "stages": DEFAULT_STAGES}
    pipeline = stack.call("POST", "/v1/pipelines", stack.user(["north", "west"]), json=body)
    assert pipeline.status_code == 201, pipeline.text
    client = stack.organization(NORTH)
    draft = {"pipeline_id": pipeline.json()["id"], "organization_id": str(client), "title": "Т"}
    created = stack.call("POST", "/v1/deals", stack.user(NORTH), json=draft)
    assert created.status_code == 201, created.text
    return created.json()


@pytest.fixture(scope="module")
def seller(stack: Stack) -> uuid.UUID:
    return stack.employee(NORTH)


def _in(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _create(stack: Stack, **body: Any) -> dict[str, Any]:
    response = stack.call("POST", "/v1/tasks", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_create_on_a_deal(stack: Stack, deal: dict[str, Any], seller: uuid.UUID) -> None:
    deadline = (datetime.now(UTC) + timedelta(days=2)).astimezone(ZoneInfo("Europe/Moscow"))
    response = stack.call(
        "POST",
        "/v1/tasks",
        stack.user(NORTH),
        json={
            "title": "Позвонить клиенту",
            "deadline": deadline.isoformat(),
            "assignee_employee_id": str(seller),
            "priority": "high",
            "deal_id": deal["id"],
        },
    )
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == 'W/"1"'
    task = response.json()
    assert task["organization_id"] == deal["organization_id"]
    assert task["directions"] == ["north"]
    assert task["status"] == "open"
    assert datetime.fromisoformat(task["deadline"]) == deadline
    [created] = stack.events(TASKS, {task["id"]}, 1)
    assert created.type == "pipeline.task.created"
    assert created.payload["priority"] == "high"
    assert created.directions == ("north",)
    [reminder] = stack.events(NOTIFICATIONS, {task["id"]}, 1)
    assert reminder.type == "pipeline.reminder.scheduled"
    assert reminder.payload["recipient"]["employee_id"] == str(seller)
    due = datetime.fromisoformat(reminder.payload["due_at"])
    assert due == deadline - timedelta(minutes=15)
    listed = stack.call("GET", f"/v1/tasks?deal_id={deal['id']}", stack.user(NORTH)).json()
    assert [t["id"] for t in listed] == [task["id"]]


def test_bad_references_and_input_write_nothing(
    stack: Stack, deal: dict[str, Any], seller: uuid.UUID
) -> None:
    before = stack.scalar("SELECT count(*) FROM tasks")
    base = {"title": "Т", "deadline": _in(1), "assignee_employee_id": str(seller)}
    south_org = stack.organization(["south"])
    inactive = stack.employee(NORTH, active=False)
    westerner = stack.employee(["west"])
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"deal_id": str(uuid.uuid4())}, 422, "deal_id"),
        ({"organization_id": str(south_org)}, 422, "organization_id"),
        ({"deal_id": deal["id"], "organization_id": str(south_org)}, 422, "organization_id"),
        ({"assignee_employee_id": str(inactive)}, 422, "assignee_employee_id"),
        ({"assignee_employee_id": str(westerner)}, 422, "assignee_employee_id"),
        ({"assignee_employee_id": str(uuid.uuid4())}, 422, "assignee_employee_id"),
        ({"directions": ["west"], "assignee_employee_id": str(westerner)}, 403, ""),
        ({"title": "a\x00b"}, 422, "title"),
        ({"title": ""}, 422, "title"),
        ({"title": "x" * 501}, 422, "title"),
        ({"deadline": "2027-01-01T10:00:00"}, 422, "deadline"),
        ({"deadline": "0001-01-01T00:00:00Z"}, 422, "deadline"),
        ({"priority": "whenever"}, 422, "priority"),
    ]
    for extra, code, field in cases:
        response = stack.call("POST", "/v1/tasks", stack.user(NORTH), json={**base, **extra})
        assert response.status_code == code, (extra, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        if field:
            assert field in str(response.json()["errors"]), (extra, response.text)
    surrogate = json.dumps({**base, "description": "\ud800"})  # escaped: valid JSON
    response = stack.call(
        "POST",
        "/v1/tasks",
        {**stack.user(NORTH), "Content-Type": "application/json"},
        content=surrogate,
    )
    assert response.status_code == 422, response.text
    assert stack.scalar("SELECT count(*) FROM tasks") == before


def test_other_directions_see_nothing_and_write_nothing(
    stack: Stack, deal: dict[str, Any], seller: uuid.UUID
) -> None:
    task = _create(stack, title="Т", deadline=_in(3), assignee_employee_id=str(seller))
    south = stack.user(["south"])
    assert stack.call("GET", f"/v1/tasks/{task['id']}", south).status_code == 404
    assert stack.call("GET", f"/v1/tasks/{task['id']}/audit", south).status_code == 404
    assert task["id"] not in [t["id"] for t in stack.call("GET", "/v1/tasks", south).json()]
    done = stack.call(
        "POST", f"/v1/tasks/{task['id']}/complete", south, if_match=1, json={"result": "x"}
    )
    assert done.status_code == 404
    officer = stack.user([], roles=["security_officer"])
    assert stack.call("GET", f"/v1/tasks/{task['id']}", officer).status_code == 200
    refused = stack.call(
        "PATCH", f"/v1/tasks/{task['id']}", officer, if_match=1, json={"title": "чужое"}
    )
    assert refused.status_code == 403
    assert stack.call("GET", f"/v1/tasks/{task['id']}", stack.user(NORTH)).json()["version"] == 1


def test_complete_reassign_and_patch(stack: Stack, seller: uuid.UUID) -> None:
    north = stack.user(NORTH)
    task = _create(stack, title="Отправить КП", deadline=_in(5), assignee_employee_id=str(seller))
    path = f"/v1/tasks/{task['id']}"
    assert stack.call("PATCH", path, north, json={"priority": "low"}).status_code == 428
    assert stack.call("PATCH", path, north, if_match=7, json={"priority": "low"}).status_code == 412
    bad = stack.call("PATCH", path, north, if_match=1, json={"deadline": "tomorrow"})
    assert bad.status_code == 422
    patched = stack.call("PATCH", path, north, if_match=1, json={"priority": "urgent"})
    assert patched.status_code == 200, patched.text
    assert patched.headers["ETag"] == 'W/"2"'
    colleague = stack.employee(NORTH)
    moved = stack.call(
        "POST",
        f"{path}/reassign",
        north,
        if_match=2,
        json={"assignee_employee_id": str(colleague), "reason": "отпуск"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["assignee_employee_id"] == str(colleague)
    same = stack.call(
        "POST", f"{path}/reassign", north, if_match=3, json={"assignee_employee_id": str(colleague)}
    )
    assert same.status_code == 409
    done = stack.call("POST", f"{path}/complete", north, if_match=3, json={"result": "Отправил"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    assert done.json()["result"] == "Отправил"
    again = stack.call("POST", f"{path}/complete", north, if_match=4, json={"result": "ещё"})
    assert again.status_code == 409
    assert again.json()["type"].endswith("/task-done")
    events = stack.events(TASKS, {task["id"]}, 4)
    assert [e.type for e in events] == [
        "pipeline.task.created",
        "pipeline.task.changed",
        "pipeline.task.reassigned",
        "pipeline.task.completed",
    ]
    assert events[1].payload["changes"] == {"priority": {"old": "normal", "new": "urgent"}}
    assert events[2].payload["from_employee_id"] == str(seller)
    assert events[3].payload["overdue"] is False
    reminders = stack.events(NOTIFICATIONS, {task["id"]}, 4)
    assert reminders[-1].type == "pipeline.reminder.cancelled"
    actions = [e["action"] for e in stack.call("GET", f"{path}/audit", north).json()]
    assert actions == ["created", "updated", "reassigned", "completed"]


def test_overdue_once_per_deadline(stack: Stack, seller: uuid.UUID) -> None:
    task = _create(stack, title="Просрочено", deadline=_in(-1), assignee_employee_id=str(seller))
    stack.wait_until(
        "SELECT overdue_at IS NOT NULL FROM tasks WHERE id = :id", True, "overdue", id=task["id"]
    )
    [overdue] = [e for e in stack.events(TASKS, {task["id"]}, 2) if e.type.endswith("overdue")]
    assert overdue.payload["assignee_employee_id"] == str(seller)
    notices = [
        e
        for e in stack.events(NOTIFICATIONS, {task["id"]}, 2)
        if e.type == "pipeline.notification.requested"
    ]
    assert [n.payload["kind"] for n in notices] == ["task.overdue"]
    assert notices[0].payload["recipients"][0]["employee_id"] == str(seller)
    listed = stack.call("GET", "/v1/tasks?overdue=true", stack.user(NORTH)).json()
    assert task["id"] in [t["id"] for t in listed]
    # a new deadline (in the past again) is a new overdue, reported once more
    stack.call(
        "PATCH",
        f"/v1/tasks/{task['id']}",
        stack.user(NORTH),
        if_match=1,
        json={"deadline": _in(-2)},
    ).raise_for_status()
    stack.wait_until(
        "SELECT count(*) FROM audit_log WHERE entity_id = :id AND action = 'overdue'",
        2,
        "the second overdue",
        id=task["id"],
    )
    assert len(stack.events(TASKS, {task["id"]}, 4)) == 4


def _handover(
    org: uuid.UUID, source: uuid.UUID, target: uuid.UUID
) -> tuple[Envelope, ResponsibilityHandedOver]:
    payload = ResponsibilityHandedOver(
        handover_id=uuid.uuid4(),
        organization_id=org,
        from_employee_id=source,
        to_employee_id=target,
        interactions_moved=0,
        reason="увольнение",
    )
    spec = REGISTRY.latest("interactions.responsibility.handed_over")
    envelope = Envelope(
        type=spec.name,
        schema_version=spec.version,
        producer="interactions",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="boss", kind="user"),
        aggregate_id=str(org),
        payload=payload.model_dump(mode="json"),
    )
    return envelope, payload


def test_hand_over_moves_the_clients_open_tasks(stack: Stack, seller: uuid.UUID) -> None:
    client, other = stack.organization(NORTH), stack.organization(NORTH)
    leaving, successor = stack.employee(NORTH), stack.employee(NORTH)
    common = {"deadline": _in(10), "assignee_employee_id": str(leaving)}
    moving = [_create(stack, title=f"T{i}", organization_id=str(client), **common) for i in (1, 2)]
    done = _create(stack, title="done", organization_id=str(client), **common)
    stack.call(
        "POST",
        f"/v1/tasks/{done['id']}/complete",
        stack.user(NORTH),
        if_match=1,
        json={"result": "ok"},
    ).raise_for_status()
    elsewhere = _create(stack, title="other", organization_id=str(other), **common)
    someone_elses = _create(
        stack,
        title="seller",
        organization_id=str(client),
        deadline=_in(10),
        assignee_employee_id=str(seller),
    )
    envelope, payload = _handover(client, leaving, successor)
    stack.send(INTERACTION_LOG, [envelope])
    stack.wait_until(
        "SELECT count(*) FROM tasks WHERE organization_id = :org AND assignee_employee_id = :to",
        2,
        "the hand-over",
        org=client,
        to=successor,
    )
    stack.send(INTERACTION_LOG, [envelope])  # a redelivery changes nothing
    north = stack.user(NORTH)
    for task in moving:
        current = stack.call("GET", f"/v1/tasks/{task['id']}", north).json()
        assert current["version"] == 2
        [reassigned] = [e for e in stack.events(TASKS, {task["id"]}, 2) if "reassigned" in e.type]
        assert reassigned.payload["handover_id"] == str(payload.handover_id)
        assert reassigned.payload["to_employee_id"] == str(successor)
    for task in (done, elsewhere, someone_elses):
        unchanged = stack.call("GET", f"/v1/tasks/{task['id']}", north).json()
        assert unchanged["assignee_employee_id"] == task["assignee_employee_id"]


def test_merged_client_tasks_follow_the_survivor(stack: Stack, seller: uuid.UUID) -> None:
    """The directory's merge (over Kafka) moves every task of the merged client, done ones too,
    to the survivor, as it moves deals; a redelivery changes nothing more."""
    survivor, merged, other = (stack.organization(NORTH) for _ in range(3))
    common = {"deadline": _in(10), "assignee_employee_id": str(seller)}
    moving = [_create(stack, title=f"M{i}", organization_id=str(merged), **common) for i in (1, 2)]
    stack.call(
        "POST",
        f"/v1/tasks/{moving[1]['id']}/complete",
        stack.user(NORTH),
        if_match=1,
        json={"result": "ok"},
    ).raise_for_status()
    elsewhere = _create(stack, title="other", organization_id=str(other), **common)
    event = OrganizationMerged(
        survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
    )
    stack.publish("organization", "directory.organization.merged", event, survivor)
    stack.wait_until(
        "SELECT count(*) FROM tasks WHERE organization_id = :org",
        2,
        "the tasks on the survivor",
        org=survivor,
    )
    stack.publish("organization", "directory.organization.merged", event, survivor)
    north = stack.user(NORTH)
    for task, version in zip(moving, (2, 3), strict=True):
        current = stack.call("GET", f"/v1/tasks/{task['id']}", north).json()
        assert (current["organization_id"], current["version"]) == (str(survivor), version)
        audit = stack.call("GET", f"/v1/tasks/{task['id']}/audit", north).json()
        assert audit[-1]["action"] == "client_merged"
        changed = stack.events(TASKS, {task["id"]}, version)[-1]
        assert changed.type == "pipeline.task.changed"
        assert changed.payload["changes"]["organization_id"]["new"] == str(survivor)
    unchanged = stack.call("GET", f"/v1/tasks/{elsewhere['id']}", north).json()
    assert (unchanged["organization_id"], unchanged["version"]) == (str(other), 1)


def test_secret_calendar_feed(stack: Stack, seller: uuid.UUID) -> None:
    me = stack.user(NORTH, subject=str(seller))
    task = _create(
        stack, title="Встреча с клиентом", deadline=_in(30), assignee_employee_id=str(seller)
    )
    assert (
        stack.call("POST", f"/v1/employees/{seller}/task-feed", stack.user(NORTH)).status_code
        == 404
    )
    issued = stack.call("POST", f"/v1/employees/{seller}/task-feed", me)
    assert issued.status_code == 201, issued.text
    url = stack.url + issued.json()["url"]
    feed = httpx.get(url, timeout=30)
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    uids = {str(event["UID"]) for event in events}
    assert f"task-{task['id']}@clientele" in uids
    [mine] = [e for e in events if str(e["UID"]) == f"task-{task['id']}@clientele"]
    assert str(mine["SUMMARY"]) == "Встреча с клиентом"
    bearer = stack.call("GET", f"/v1/employees/{seller}/tasks.ics", stack.user(["south"]))
    assert f"task-{task['id']}" not in bearer.text
    rotated = stack.call("POST", f"/v1/employees/{seller}/task-feed", me)
    assert httpx.get(url, timeout=30).status_code == 404
    assert httpx.get(stack.url + "/v1/task-feeds/garbage.ics", timeout=30).status_code == 404
    assert stack.call("DELETE", f"/v1/employees/{seller}/task-feed", me).status_code == 204
    assert httpx.get(stack.url + rotated.json()["url"], timeout=30).status_code == 404
