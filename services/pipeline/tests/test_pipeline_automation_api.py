"""Automation rules against the real stack: rules as versioned data bound to a pipeline's
directions, firing on the pipeline's own deal events (through Kafka and the inbox), CEL
conditions, actions through the deals' service functions, loops stopped, the run log."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from clientele_shared.db import async_url
from clientele_shared.events.catalog import DEALS
from clientele_shared.events.topics import notification_requests
from clientele_testkit.processes import ServiceProcess, wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

NORTH = ["north"]
SOUTH = ["south"]
RULES = "/v1/automation/rules"
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    stages = [{"name": "Знакомство", "kind": "open", "required_fields": ["amount"]}]
    body = {"name": "Автоматика", "directions": NORTH, "stages": [*stages, *DEFAULT_STAGES]}
    response = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _rule(stack: Stack, pipeline: dict[str, Any], **definition: Any) -> dict[str, Any]:
    body = {"pipeline_id": pipeline["id"], "name": "Правило", **definition}
    response = stack.call("POST", RULES, stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(stack: Stack, pipeline: dict[str, Any], **fields: Any) -> dict[str, Any]:
    client = fields.pop("organization_id", None) or str(stack.organization(NORTH))
    body = {"pipeline_id": pipeline["id"], "organization_id": client, "title": "Сделка", **fields}
    response = stack.call("POST", "/v1/deals", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _execute(stack: Stack, sql: str, **params: Any) -> None:
    """A committed change behind the service's back (a state the directory's events make)."""

    async def run() -> None:
        engine = create_async_engine(async_url(stack.database_url))
        try:
            async with engine.begin() as conn:
                await conn.execute(text(sql), params)
        finally:
            await engine.dispose()

    asyncio.run(run())


def _runs(stack: Stack, deal_id: str, rule_id: str, wanted: int = 1) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        runs = stack.call("GET", f"/v1/deals/{deal_id}/automation-runs", stack.user(NORTH)).json()
        return [run for run in runs if run["rule_id"] == rule_id]

    wait_for(lambda: len(found()) >= wanted, 90, "the rule's firings")
    return found()


def test_rules_are_versioned_validated_data_bound_to_directions(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    north, south = stack.user(NORTH), stack.user(SOUTH)
    schema = stack.call("GET", f"{RULES}/schema", north).json()
    assert {"trigger", "actions", "pipeline_id"} <= set(schema["properties"])
    bad = {
        "pipeline_id": pipeline["id"],
        "name": "x",
        "trigger": {"kind": "deal_created"},
        "conditions": {"all": [{"cel": "deal.amount >="}]},
        "actions": [{"kind": "add_tags", "tags": ["a"]}],
    }
    assert stack.call("POST", RULES, north, json=bad).status_code == 422
    bad["conditions"] = None
    assert stack.call("POST", RULES, south, json=bad).status_code == 422  # pipeline unseen
    rule = _rule(stack, pipeline, trigger={"kind": "manual"}, actions=bad["actions"])
    path = f"{RULES}/{rule['id']}"
    assert stack.call("GET", path, south).status_code == 404
    assert stack.call("PATCH", path, south, if_match=1, json={"enabled": False}).status_code == 404
    assert stack.call("PATCH", path, north, json={"enabled": False}).status_code == 428
    edited = stack.call("PATCH", path, north, if_match=1, json={"enabled": False})
    assert edited.status_code == 200, edited.text
    assert edited.headers["ETag"] == 'W/"2"'
    assert edited.json()["enabled"] is False
    assert stack.call("PATCH", path, north, if_match=1, json={"name": "y"}).status_code == 412
    assert (
        stack.scalar(
            "SELECT count(*) FROM automation_rule_versions WHERE rule_id = :id", id=rule["id"]
        )
        == 2
    )
    audit = stack.call("GET", f"{path}/audit", north).json()
    assert [entry["action"] for entry in audit] == ["created", "updated"]
    assert audit[1]["changes"] == {"enabled": {"old": True, "new": False}}
    assert rule["id"] in [r["id"] for r in stack.call("GET", RULES, north).json()]
    assert rule["id"] not in [r["id"] for r in stack.call("GET", RULES, south).json()]


def test_field_change_from_to_fires_once_and_acts_as_the_rule(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    north = stack.user(NORTH)
    rule = _rule(
        stack,
        pipeline,
        trigger={
            "kind": "field_changed",
            "field": "custom_fields.grade",
            "match": "from_to",
            "from": "B",
            "to": "A",
        },
        conditions={"any": [{"cel": "deal.amount >= 1000.0"}, {"cel": "'vip' in deal.tags"}]},
        actions=[
            {"kind": "add_tags", "tags": ["hot"]},
            {"kind": "set_field", "field": "custom_fields.priority", "value": 1},
        ],
    )
    deal = _deal(stack, pipeline, amount="5000.00", currency="RUB", custom_fields={"grade": "C"})
    path = f"/v1/deals/{deal['id']}"
    # C -> B: no match; B -> A: fires
    patched = stack.call("PATCH", path, north, if_match=1, json={"custom_fields": {"grade": "B"}})
    assert patched.status_code == 200, patched.text
    stack.call("PATCH", path, north, if_match=2, json={"custom_fields": {"grade": "A"}})
    run = _runs(stack, deal["id"], rule["id"])[0]
    assert run["status"] == "fired", run
    assert run["rule_version"] == 1
    assert run["trigger"]["old"] == "B"
    assert run["trigger"]["new"] == "A"
    assert [c["result"] for c in run["conditions"]] == [True, False]
    assert [(s["kind"], s["status"]) for s in run["steps"]] == [
        ("add_tags", "done"),
        ("set_field", "done"),
    ]
    current = stack.call("GET", path, north).json()
    assert current["tags"] == ["hot"]
    assert current["custom_fields"] == {"grade": "A", "priority": 1}
    audit = stack.call("GET", f"{path}/audit", north).json()
    by_rule = [e for e in audit if e["actor_subject"] == f"automation:{rule['id']}@v1"]
    assert len(by_rule) == 2
    # the rule's own change (grade stays A) never fires it again: one firing only
    events = stack.events(DEALS, {deal["id"]}, 5)
    assert len(events) == 5
    ids = ",".join(f"'{event.event_id}'" for event in events)
    stack.wait_until(
        "SELECT count(*) FROM inbox WHERE consumer = 'pipeline.automation' "
        f"AND event_id IN ({ids})",
        5,
        "every deal event consumed",
    )
    assert len(_runs(stack, deal["id"], rule["id"])) == 1


def test_ping_pong_is_stopped_by_the_causation_chain(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    north = stack.user(NORTH)
    tag = f"t{uuid.uuid4().hex[:6]}"
    ping = _rule(
        stack,
        pipeline,
        trigger={"kind": "tag_added", "tag": tag},
        actions=[{"kind": "remove_tags", "tags": [tag]}],
    )
    pong = _rule(
        stack,
        pipeline,
        trigger={"kind": "tag_removed", "tag": tag},
        actions=[{"kind": "add_tags", "tags": [tag]}],
    )
    deal = _deal(stack, pipeline)
    stack.call("PATCH", f"/v1/deals/{deal['id']}", north, if_match=1, json={"tags": [tag]})
    pings = _runs(stack, deal["id"], ping["id"], 2)
    assert sorted(run["status"] for run in pings) == ["fired", "loop_stopped"]
    stopped = next(run for run in pings if run["status"] == "loop_stopped")
    assert ping["id"] in stopped["reason"]
    assert pong["id"] in stopped["chain"]
    assert [run["status"] for run in _runs(stack, deal["id"], pong["id"])] == ["fired"]
    for rule in (ping, pong):
        stack.call("DELETE", f"{RULES}/{rule['id']}", north, if_match=1)


def test_manual_run_move_failure_notification_and_blocked_client(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    north = stack.user(NORTH)
    employee = stack.employee(NORTH)
    second = pipeline["stages"][1]["id"]
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        actions=[
            {"kind": "move_to_stage", "stage_id": second},
            {"kind": "notify", "channel": "email", "subject": "Сделка", "text": "Посмотрите"},
            {"kind": "notify", "channel": "inapp", "subject": "Сделка", "text": "Посмотрите"},
            {"kind": "set_responsible", "employee_id": str(employee)},
        ],
    )
    deal = _deal(stack, pipeline, responsible_employee_id=str(employee))
    run = stack.call("POST", f"{RULES}/{rule['id']}/run", north, json={"deal_id": deal["id"]})
    assert run.status_code == 200, run.text
    steps = run.json()["steps"]
    assert [s["status"] for s in steps] == ["failed", "done", "done", "done"]
    assert "amount" in steps[0]["error"]  # the playbook's required field still applies
    assert stack.call("GET", f"/v1/deals/{deal['id']}", north).json()["stage_id"] != second
    audit = stack.call("GET", f"/v1/deals/{deal['id']}/audit", north).json()
    failed = [entry for entry in audit if entry["action"] == "automation_failed"]
    assert len(failed) == 1
    assert "amount" in failed[0]["note"]
    assert failed[0]["actor_subject"] == f"automation:{rule['id']}@v1"
    keys = {steps[1]["detail"]["idempotency_key"], steps[2]["detail"]["idempotency_key"]}
    requests = stack.events(notification_requests("pipeline"), {deal["id"]}, 2)
    assert {r.payload["idempotency_key"] for r in requests} == keys
    assert {r.payload["channel"] for r in requests} == {"email", "inapp"}
    assert all(r.payload["recipients"][0]["employee_id"] == str(employee) for r in requests)
    blocked_client = stack.organization(NORTH)
    blocked = _deal(stack, pipeline, organization_id=str(blocked_client))
    _execute(stack, "UPDATE deals SET client_blocked = true WHERE id = :id", id=blocked["id"])
    run = stack.call("POST", f"{RULES}/{rule['id']}/run", north, json={"deal_id": blocked["id"]})
    statuses = [(s["kind"], s["status"]) for s in run.json()["steps"]]
    assert statuses[1] == ("notify", "skipped")
    assert statuses[3] == ("set_responsible", "skipped")
    dry = stack.call(
        "POST", f"{RULES}/{rule['id']}/dry-run", north, json={"deal_id": deal["id"]}
    ).json()
    assert dry["would_fire"] is True
    assert len(dry["actions"]) == 4
    south = stack.user(SOUTH)
    assert (
        stack.call("POST", f"{RULES}/{rule['id']}/run", south, json={"deal_id": deal["id"]})
    ).status_code == 404


def test_a_redelivered_event_never_fires_twice(stack: Stack, pipeline: dict[str, Any]) -> None:
    """Even with its inbox row gone (the inbox kept apart from the firing), the same event
    redelivered finds its firing claimed: no second firing, no second change."""
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "deal_created"},
        conditions={"all": [{"cel": "deal.title == 'Повтор'"}]},
        actions=[{"kind": "set_field", "field": "custom_fields.seen", "value": True}],
    )
    deal = _deal(stack, pipeline, title="Повтор")
    assert _runs(stack, deal["id"], rule["id"])[0]["status"] == "fired"
    created = [e for e in stack.events(DEALS, {deal["id"]}, 2) if e.type.endswith(".created")]
    stack.wait_until(
        "SELECT version FROM deals WHERE id = :id", 2, "the rule's change", id=deal["id"]
    )
    _execute(
        stack,
        "DELETE FROM inbox WHERE consumer = 'pipeline.automation' AND event_id = :id",
        id=created[0].event_id,
    )
    stack.send(DEALS, created)
    stack.wait_until(
        "SELECT count(*) FROM inbox WHERE consumer = 'pipeline.automation' AND event_id = :id",
        1,
        "the redelivered event consumed",
        id=created[0].event_id,
    )
    assert len(_runs(stack, deal["id"], rule["id"])) == 1
    assert stack.call("GET", f"/v1/deals/{deal['id']}", stack.user(NORTH)).json()["version"] == 2
    stack.call("DELETE", f"{RULES}/{rule['id']}", stack.user(NORTH), if_match=1)


@pytest.fixture
def replica(
    service_env: dict[str, str], pipeline_migrated: str, tmp_path: Path
) -> Iterator[ServiceProcess]:
    """A second pipeline process on the same database and topics."""
    process = ServiceProcess(
        "pipeline", {**service_env, "DATABASE_URL": pipeline_migrated}, tmp_path, VENV_BIN
    )
    try:
        wait_for(process.ready, 60, "the second pipeline replica to be ready")
        yield process
    finally:
        process.stop()


def test_delayed_actions_run_once_near_due_time_or_are_skipped(
    stack: Stack, pipeline: dict[str, Any], replica: ServiceProcess
) -> None:
    """Two replicas run the schedule: each delayed action runs once, within a second of its
    due time; one whose condition no longer holds is skipped with the reason."""
    north = stack.user(NORTH)
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "manual"},
        conditions={"all": [{"cel": "!('stop' in deal.tags)"}]},
        actions=[{"kind": "add_tags", "tags": ["later"], "delay_seconds": 5}],
    )
    deals = [_deal(stack, pipeline) for _ in range(6)]
    stopped = deals[0]
    for deal in deals:
        run = stack.call("POST", f"{RULES}/{rule['id']}/run", north, json={"deal_id": deal["id"]})
        assert run.json()["steps"][0]["status"] == "scheduled"
        if deal is stopped:  # at once, well before its action is due
            patch = {"tags": ["stop"]}
            tag = stack.call("GET", f"/v1/deals/{deal['id']}", north).headers["ETag"]
            changed = stack.call(
                "PATCH", f"/v1/deals/{deal['id']}", north, if_match=tag, json=patch
            )
            assert changed.status_code == 200, changed.text

    def settled() -> bool:
        runs = stack.call("GET", f"{RULES}/{rule['id']}/runs", north).json()
        return all(run["steps"][0]["status"] != "scheduled" for run in runs)

    wait_for(settled, 30, "the delayed actions")
    skipped = _runs(stack, stopped["id"], rule["id"])[0]["steps"][0]
    assert skipped["status"] == "skipped"
    assert skipped["detail"]["skipped"] == "the conditions no longer hold"
    assert stack.call("GET", f"/v1/deals/{stopped['id']}", north).json()["tags"] == ["stop"]
    for deal in deals[1:]:
        step = _runs(stack, deal["id"], rule["id"])[0]["steps"][0]
        assert step["status"] == "done", step
        current = stack.call("GET", f"/v1/deals/{deal['id']}", north).json()
        assert current["tags"] == ["later"]
        assert current["version"] == 2  # once, though two replicas ran the schedule
        lateness = stack.scalar(
            "SELECT extract(epoch FROM a.occurred_at - s.due_at) FROM audit_log a, "
            "automation_schedule s JOIN automation_firings f ON f.id = s.firing_id "
            "WHERE a.entity_id = :id AND a.version = 2 AND f.deal_id = :id",
            id=deal["id"],
        )
        assert 0 <= float(lateness) < 1.0
    stack.call("DELETE", f"{RULES}/{rule['id']}", north, if_match=1)


def test_two_rules_moving_a_deal_back_and_forth_stop(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    north = stack.user(NORTH)
    first, second = pipeline["stages"][1]["id"], pipeline["stages"][2]["id"]
    back = _rule(
        stack,
        pipeline,
        trigger={"kind": "stage_entered", "stage_id": second},
        actions=[{"kind": "move_to_stage", "stage_id": first, "reason": "назад"}],
    )
    forth = _rule(
        stack,
        pipeline,
        trigger={"kind": "stage_entered", "stage_id": first},
        actions=[{"kind": "move_to_stage", "stage_id": second, "reason": "вперёд"}],
    )
    deal = _deal(stack, pipeline, amount="10.00", currency="RUB")
    moved = stack.call(
        "POST", f"/v1/deals/{deal['id']}/move", north, if_match=1, json={"stage_id": second}
    )
    assert moved.status_code == 200, moved.text
    backs = _runs(stack, deal["id"], back["id"], 2)
    assert sorted(run["status"] for run in backs) == ["fired", "loop_stopped"]
    assert [run["status"] for run in _runs(stack, deal["id"], forth["id"])] == ["fired"]
    history = stack.call("GET", f"/v1/deals/{deal['id']}/history", north).json()
    assert [entry["reason"] for entry in history[1:]] == [None, "назад", "вперёд"]
    assert history[-1]["actor_subject"] == f"automation:{forth['id']}@v1"
    for rule in (back, forth):
        stack.call("DELETE", f"{RULES}/{rule['id']}", north, if_match=1)
