"""The employees an automation rule's actions name are checked when the rule is written: known,
active and working in one of the pipeline's directions (422 naming the action's field, nothing
written); a rule whose employee left since can still be changed (paused) without naming him
again."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]
RULES = "/v1/automation/rules"


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Ссылки правил", "directions": NORTH, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _body(pipeline: dict[str, Any], action: dict[str, Any]) -> dict[str, Any]:
    return {
        "pipeline_id": pipeline["id"],
        "name": "Назначить",
        "trigger": {"kind": "manual"},
        "actions": [action],
    }


def _set(employee: uuid.UUID) -> dict[str, Any]:
    return {"kind": "set_responsible", "employee_id": str(employee)}


def _task(employee: uuid.UUID) -> dict[str, Any]:
    return {
        "kind": "create_task",
        "title": "Позвонить",
        "assignee": {"rule": "employee", "employee_id": str(employee)},
    }


@pytest.mark.parametrize("action", [_set, _task], ids=["set_responsible", "create_task"])
def test_a_rule_names_only_active_employees_of_its_directions(
    stack: Stack, pipeline: dict[str, Any], action: Any
) -> None:
    north = stack.user(NORTH)
    before = stack.scalar("SELECT count(*) FROM automation_rules")
    for employee, kind in (
        (uuid.uuid4(), "unknown_reference"),
        (stack.employee(NORTH, active=False), "unknown_reference"),
        (stack.employee(["south"]), "direction_mismatch"),
    ):
        response = stack.call("POST", RULES, north, json=_body(pipeline, action(employee)))
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        [error] = response.json()["errors"]
        assert error["location"][1:3] == ["actions", "0"], error
        assert error["type"] == kind, error
    assert stack.scalar("SELECT count(*) FROM automation_rules") == before

    created = stack.call("POST", RULES, north, json=_body(pipeline, action(stack.employee(NORTH))))
    assert created.status_code == 201, created.text
    rule = created.json()
    outsider = stack.employee(["south"])
    changed = stack.call(
        "PATCH", f"{RULES}/{rule['id']}", north, if_match=1, json={"actions": [action(outsider)]}
    )
    assert changed.status_code == 422, changed.text
    # the employee named leaves: the rule can still be paused
    stack.execute("UPDATE employees SET active = false WHERE employee_id = :id", id=_named(rule))
    paused = stack.call(
        "PATCH", f"{RULES}/{rule['id']}", north, if_match=1, json={"enabled": False}
    )
    assert paused.status_code == 200, paused.text


def _named(rule: dict[str, Any]) -> uuid.UUID:
    action = rule["actions"][0]
    return uuid.UUID(action.get("employee_id") or action["assignee"]["employee_id"])
