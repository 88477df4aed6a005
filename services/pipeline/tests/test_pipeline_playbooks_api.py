"""Stage playbooks on a deal: the fields still missing, the checklist ticked, the call script."""

from __future__ import annotations

from typing import Any

import pytest
from clientele_shared.events.catalog import DEALS
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]
SCRIPT = {
    "text": "Здравствуйте! Звоню по поводу поставки.",
    "objections": [{"objection": "Дорого", "answer": "Считаем окупаемость вместе."}],
}


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    first = {
        "name": "Знакомство",
        "required_fields": ["amount"],
        "checklist": ["Узнать ЛПР", "Отправить презентацию"],
        "script": SCRIPT,
    }
    body = {"name": "Регламент", "directions": NORTH, "stages": [first, *DEFAULT_STAGES[1:]]}
    response = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_playbook_and_checklist(stack: Stack, pipeline: dict[str, Any]) -> None:
    north = stack.user(NORTH)
    client = stack.organization(NORTH)
    body = {"pipeline_id": pipeline["id"], "organization_id": str(client), "title": "Сделка"}
    deal = stack.call("POST", "/v1/deals", north, json=body).json()
    path = f"/v1/deals/{deal['id']}"
    playbook = stack.call("GET", f"{path}/playbook", north).json()
    assert playbook["missing_fields"] == ["amount"]
    assert playbook["script"] == SCRIPT
    assert playbook["checklist"] == [
        {"item": "Узнать ЛПР", "done": False},
        {"item": "Отправить презентацию", "done": False},
    ]
    assert stack.call("PUT", f"{path}/checklist", north, json={"done": []}).status_code == 428
    unknown = stack.call("PUT", f"{path}/checklist", north, if_match=1, json={"done": ["Спеть"]})
    assert unknown.status_code == 422
    ticked = stack.call(
        "PUT", f"{path}/checklist", north, if_match=1, json={"done": ["Отправить презентацию"]}
    )
    assert ticked.status_code == 200, ticked.text
    assert ticked.headers["ETag"] == 'W/"2"'
    stale = stack.call("PUT", f"{path}/checklist", north, if_match=1, json={"done": []})
    assert stale.status_code == 412
    playbook = stack.call("GET", f"{path}/playbook", north).json()
    assert [item["done"] for item in playbook["checklist"]] == [False, True]
    audit = stack.call("GET", f"{path}/audit", north).json()
    first = pipeline["stages"][0]["id"]
    assert audit[-1]["action"] == "checklist_ticked"
    assert audit[-1]["changes"] == {
        f"checklist_ticks.{first}": {"old": [], "new": ["Отправить презентацию"]}
    }
    changed = stack.events(DEALS, {deal["id"]}, 2)[-1]
    assert changed.type == "pipeline.deal.changed"
    south = stack.user(["south"])
    assert stack.call("GET", f"{path}/playbook", south).status_code == 404
    response = stack.call("PUT", f"{path}/checklist", south, if_match=2, json={"done": []})
    assert response.status_code == 404


def test_stage_playbook_is_edited_and_checked(stack: Stack, pipeline: dict[str, Any]) -> None:
    north = stack.user(NORTH)
    current = stack.call("GET", f"/v1/pipelines/{pipeline['id']}", north)
    stage = pipeline["stages"][1]["id"]
    path = f"/v1/pipelines/{pipeline['id']}/stages/{stage}"
    version = int(current.headers["ETag"][3:-1])
    duplicate = stack.call("PATCH", path, north, if_match=version, json={"checklist": ["a", "A"]})
    assert duplicate.status_code == 422
    bad_script = {"script": {"objections": [{"objection": "x"}]}}
    assert stack.call("PATCH", path, north, if_match=version, json=bad_script).status_code == 422
    changed = stack.call(
        "PATCH", path, north, if_match=version, json={"checklist": ["Счёт"], "script": SCRIPT}
    )
    assert changed.status_code == 200, changed.text
    edited = next(s for s in changed.json()["stages"] if s["id"] == stage)
    assert (edited["checklist"], edited["script"]) == (["Счёт"], SCRIPT)
    audit = stack.call("GET", f"/v1/pipelines/{pipeline['id']}/audit", north).json()
    assert audit[-1]["changes"][f"stages.{stage}.checklist"] == {"old": [], "new": ["Счёт"]}
    cleared = stack.call("PATCH", path, north, if_match=version + 1, json={"script": None})
    assert next(s for s in cleared.json()["stages"] if s["id"] == stage)["script"] is None
