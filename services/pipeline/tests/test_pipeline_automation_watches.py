"""Triggers on time passing, against the real stack: N days before or after a deal's date
(recalculated when the date changes) and no activity on a deal for N days."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from clientele_testkit.processes import wait_for
from pipeline_testkit import DEFAULT_STAGES, Stack

RULES = "/v1/automation/rules"
WATCH = ["watch"]
MSK = ZoneInfo("Europe/Moscow")  # the company calendar's zone (this direction has none)


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Сроки", "directions": WATCH, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(WATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _rule(stack: Stack, pipeline: dict[str, Any], **definition: Any) -> dict[str, Any]:
    body = {"pipeline_id": pipeline["id"], "name": "Правило", **definition}
    response = stack.call("POST", RULES, stack.user(WATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _deal(stack: Stack, pipeline: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {
        "pipeline_id": pipeline["id"],
        "organization_id": str(stack.organization(WATCH)),
        "title": "Сделка",
        **fields,
    }
    response = stack.call("POST", "/v1/deals", stack.user(WATCH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _watch(stack: Stack, rule: dict[str, Any], deal: dict[str, Any]) -> tuple[Any, Any] | None:
    row = stack.scalar(
        "SELECT json_build_array(due_at, basis) FROM automation_watches "
        "WHERE rule_id = :rule AND deal_id = :deal",
        rule=rule["id"],
        deal=deal["id"],
    )
    return None if row is None else (datetime.fromisoformat(row[0]), row[1])


def _runs(stack: Stack, deal: dict[str, Any], rule: dict[str, Any]) -> list[dict[str, Any]]:
    runs = stack.call("GET", f"/v1/deals/{deal['id']}/automation-runs", stack.user(WATCH)).json()
    return [run for run in runs if run["rule_id"] == rule["id"]]


def test_days_before_a_date_field_recalculated_when_it_changes(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(WATCH)
    soon = (datetime.now(UTC) + timedelta(seconds=20)).astimezone(MSK)
    close = soon.date() + timedelta(days=3)  # 3 days before it is `soon`
    rule = _rule(
        stack,
        pipeline,
        trigger={
            "kind": "date_reached",
            "field": "expected_close_date",
            "offset_days": -3,
            "at": soon.time().replace(microsecond=0).isoformat(),
        },
        conditions={"all": [{"cel": "!('stop' in deal.tags)"}]},
        actions=[{"kind": "add_tags", "tags": ["close-soon"]}],
    )
    far = str(close + timedelta(days=30))
    deal = _deal(stack, pipeline, expected_close_date=far)
    stopped = _deal(stack, pipeline, expected_close_date=str(close), tags=["stop"])
    undated = _deal(stack, pipeline)
    wait_for(lambda: _watch(stack, rule, deal) is not None, 30, "the date's watch")
    assert _watch(stack, rule, deal)[1] == far  # type: ignore[index]
    assert _watch(stack, rule, undated) is None
    changed = stack.call(
        "PATCH",
        f"/v1/deals/{deal['id']}",
        user,
        if_match=1,
        json={"expected_close_date": str(close)},
    )
    assert changed.status_code == 200, changed.text
    wait_for(lambda: bool(_runs(stack, deal, rule)), 30, "the firing on the new date")
    run = _runs(stack, deal, rule)[0]
    assert run["trigger"] == {
        "kind": "date_reached",
        "field": "expected_close_date",
        "date": str(close),
        "offset_days": -3,
    }
    assert run["status"] == "fired"
    assert run["steps"][0]["status"] == "done"
    current = stack.call("GET", f"/v1/deals/{deal['id']}", user).json()
    assert current["tags"] == ["close-soon"]
    assert _watch(stack, rule, deal) is None  # fired once: gone
    wait_for(lambda: bool(_runs(stack, stopped, rule)), 30, "the firing for the stopped deal")
    assert _runs(stack, stopped, rule)[0]["status"] == "conditions_not_met"
    assert stack.call("GET", f"/v1/deals/{stopped['id']}", user).json()["tags"] == ["stop"]
    stack.call("DELETE", f"{RULES}/{rule['id']}", user, if_match=1)


def test_no_activity_for_n_days_restarts_on_each_change(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    user = stack.user(WATCH)
    deal = _deal(stack, pipeline)
    rule = _rule(
        stack,
        pipeline,
        trigger={"kind": "no_activity", "days": 3},
        actions=[{"kind": "add_tags", "tags": ["quiet"]}],
    )
    created = _watch(stack, rule, deal)  # set at once for the deals already there
    assert created is not None
    assert created[0] == datetime.fromisoformat(deal["updated_at"]) + timedelta(days=3)
    changed = stack.call("PATCH", f"/v1/deals/{deal['id']}", user, if_match=1, json={"title": "Т"})
    assert changed.status_code == 200

    def moved() -> bool:
        found = _watch(stack, rule, deal)
        return found is not None and found[1] != created[1]

    wait_for(moved, 30, "the inactivity count restarted by the change")
    restarted = _watch(stack, rule, deal)
    assert restarted is not None
    assert restarted[0] > created[0]
    stack.execute(  # three days pass
        "UPDATE automation_watches SET due_at = now() WHERE rule_id = :rule",
        rule=rule["id"],
    )
    wait_for(lambda: bool(_runs(stack, deal, rule)), 30, "the inactivity firing")
    run = _runs(stack, deal, rule)[0]
    assert run["trigger"] == {"kind": "no_activity", "days": 3, "since": restarted[1]}
    assert run["steps"][0]["status"] == "done"
    # the rule's own change is no activity: nothing is watched until someone acts
    wait_for(
        lambda: "quiet" in stack.call("GET", f"/v1/deals/{deal['id']}", user).json()["tags"],
        30,
        "the tag",
    )
    assert _watch(stack, rule, deal) is None
    again = stack.call("PATCH", f"/v1/deals/{deal['id']}", user, if_match=3, json={"title": "Т2"})
    assert again.status_code == 200, again.text
    wait_for(lambda: _watch(stack, rule, deal) is not None, 30, "a person's change watched")
    disabled = stack.call(
        "PATCH", f"{RULES}/{rule['id']}", user, if_match=1, json={"enabled": False}
    )
    assert disabled.status_code == 200
    assert _watch(stack, rule, deal) is None  # a disabled rule watches nothing
