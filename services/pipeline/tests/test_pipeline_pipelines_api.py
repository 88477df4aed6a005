"""Pipelines and stages over HTTP: ordered stages, directions, ETags, audit, soft delete."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]


def _create(stack: Stack, directions: list[str] = NORTH, **extra: Any) -> dict[str, Any]:
    body = {"name": "Тёплые клиенты", "directions": directions, "stages": DEFAULT_STAGES, **extra}
    response = stack.call("POST", "/v1/pipelines", stack.user(directions), json=body)
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == 'W/"1"'
    return response.json()


def test_create_read_and_list(stack: Stack) -> None:
    pipeline = _create(stack, lost_reasons=["Дорого", "Ушли к конкуренту"])
    assert [s["name"] for s in pipeline["stages"]] == [
        "Новая",
        "Переговоры",
        "Выиграна",
        "Проиграна",
    ]
    assert [s["position"] for s in pipeline["stages"]] == [0, 1, 2, 3]
    assert pipeline["lost_reasons"] == ["Дорого", "Ушли к конкуренту"]
    read = stack.call("GET", f"/v1/pipelines/{pipeline['id']}", stack.user(NORTH))
    assert read.status_code == 200
    assert read.json() == pipeline
    listed = stack.call("GET", "/v1/pipelines", stack.user(NORTH)).json()
    assert pipeline["id"] in {p["id"] for p in listed}
    south = stack.call("GET", "/v1/pipelines", stack.user(["south"])).json()
    assert pipeline["id"] not in {p["id"] for p in south}


def test_other_direction_404_on_reads_and_writes_403_on_create(stack: Stack) -> None:
    pipeline = _create(stack)
    south = stack.user(["south"])
    base = f"/v1/pipelines/{pipeline['id']}"
    stage = pipeline["stages"][0]["id"]
    for method, path, body in [
        ("GET", base, None),
        ("GET", f"{base}/audit", None),
        ("GET", f"{base}/board", None),
        ("PATCH", base, {"name": "x"}),
        ("DELETE", base, None),
        ("POST", f"{base}/restore", None),
        ("POST", f"{base}/stages", {"name": "x"}),
        ("PATCH", f"{base}/stages/{stage}", {"name": "x"}),
        ("PUT", f"{base}/stages/order", {"stage_ids": [stage]}),
        ("DELETE", f"{base}/stages/{stage}", None),
    ]:
        response = stack.call(method, path, south, if_match=1, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    body = {"name": "Чужая", "directions": ["north"], "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", south, json=body)
    assert response.status_code == 403
    assert response.json()["type"].endswith("/forbidden-direction")
    # seeing one of its directions is not enough to change a pipeline of two
    both = _create(stack, directions=["north", "west"])
    response = stack.call(
        "PATCH", f"/v1/pipelines/{both['id']}", stack.user(NORTH), if_match=1, json={"name": "y"}
    )
    assert response.status_code == 403


def test_if_match_required_and_checked(stack: Stack) -> None:
    pipeline = _create(stack)
    path = f"/v1/pipelines/{pipeline['id']}"
    north = stack.user(NORTH)
    assert stack.call("PATCH", path, north, json={"name": "Новое"}).status_code == 428
    changed = stack.call("PATCH", path, north, if_match=1, json={"name": "Новое"})
    assert changed.status_code == 200
    assert changed.headers["ETag"] == 'W/"2"'
    stale = stack.call("PATCH", path, north, if_match=1, json={"name": "Другое"})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 2
    assert stale.headers["ETag"] == 'W/"2"'
    same = stack.call("PATCH", path, north, if_match=2, json={"name": "Новое"})
    assert same.status_code == 200
    assert same.headers["ETag"] == 'W/"2"'


def test_stages_add_rename_reorder_archive_delete(stack: Stack) -> None:
    pipeline = _create(stack)
    path = f"/v1/pipelines/{pipeline['id']}"
    north = stack.user(NORTH)
    added = stack.call(
        "POST",
        f"{path}/stages",
        north,
        if_match=1,
        json={
            "name": "Счёт выставлен",
            "position": 2,
            "probability": 80,
            "expected_days": 5,
            "color": "#33aa55",
            "required_fields": ["amount", "custom_fields.contract_no"],
        },
    )
    assert added.status_code == 201, added.text
    stages = added.json()["stages"]
    assert [s["name"] for s in stages][:3] == ["Новая", "Переговоры", "Счёт выставлен"]
    invoice = stages[2]
    assert invoice["required_fields"] == ["amount", "custom_fields.contract_no"]
    duplicate = stack.call("POST", f"{path}/stages", north, if_match=2, json={"name": "новая"})
    assert duplicate.status_code == 422
    renamed = stack.call(
        "PATCH", f"{path}/stages/{invoice['id']}", north, if_match=2, json={"name": "Счёт"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["version"] == 3
    order = [s["id"] for s in reversed(renamed.json()["stages"])]
    reordered = stack.call(
        "PUT", f"{path}/stages/order", north, if_match=3, json={"stage_ids": order}
    )
    assert reordered.status_code == 200
    assert [s["id"] for s in reordered.json()["stages"]] == order
    incomplete = stack.call(
        "PUT", f"{path}/stages/order", north, if_match=4, json={"stage_ids": order[:2]}
    )
    assert incomplete.status_code == 422
    archived = stack.call(
        "PATCH", f"{path}/stages/{invoice['id']}", north, if_match=4, json={"archived": True}
    )
    assert archived.status_code == 200
    assert next(s for s in archived.json()["stages"] if s["id"] == invoice["id"])["archived"]
    deleted = stack.call("DELETE", f"{path}/stages/{invoice['id']}", north, if_match=5)
    assert deleted.status_code == 200
    assert invoice["id"] not in {s["id"] for s in deleted.json()["stages"]}
    audit = stack.call("GET", f"{path}/audit", north).json()
    assert [entry["action"] for entry in audit] == [
        "created",
        "stage_added",
        "stage_updated",
        "stages_reordered",
        "stage_updated",
        "stage_deleted",
    ]
    assert audit[2]["changes"] == {
        f"stages.{invoice['id']}.name": {"old": "Счёт выставлен", "new": "Счёт"}
    }
    assert audit[1]["actor_subject"] == "alice"


def test_soft_delete_and_restore(stack: Stack) -> None:
    pipeline = _create(stack)
    path = f"/v1/pipelines/{pipeline['id']}"
    north = stack.user(NORTH)
    assert stack.call("DELETE", path, north).status_code == 428
    deleted = stack.call("DELETE", path, north, if_match=1)
    assert deleted.status_code == 204
    assert deleted.headers["ETag"] == 'W/"2"'
    assert stack.call("GET", path, north).status_code == 404
    assert stack.call("GET", path, north, params={"include_deleted": True}).status_code == 200
    listed = stack.call("GET", "/v1/pipelines", north, params={"deleted": True}).json()
    assert pipeline["id"] in {p["id"] for p in listed}
    restored = stack.call("POST", f"{path}/restore", north, if_match=2)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    again = stack.call("POST", f"{path}/restore", north, if_match=3)
    assert again.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\x00b", "directions": ["north"], "stages": DEFAULT_STAGES},
        {
            "name": "x",
            "directions": ["north"],
            "stages": [{"name": "a", "kind": "someday"}, {"name": "b"}],
        },
        {
            "name": "x",
            "directions": ["north"],
            "stages": [{"name": "a", "kind": "won"}, {"name": "b", "kind": "lost"}],
        },
        {
            "name": "x",
            "directions": ["north"],
            "stages": [{"name": "a", "probability": 101}, {"name": "b"}],
        },
        {
            "name": "x",
            "directions": ["north"],
            "stages": [{"name": "a", "color": "red"}, {"name": "b"}],
        },
        {
            "name": "x",
            "directions": ["north"],
            "stages": [{"name": "a", "required_fields": ["password"]}, {"name": "b"}],
        },
        {"name": "x", "directions": ["North!"], "stages": DEFAULT_STAGES},
        {"name": "x", "directions": ["north"], "stages": DEFAULT_STAGES, "extra": 1},
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(stack: Stack, body: dict[str, Any]) -> None:
    before = stack.scalar("SELECT count(*) FROM pipelines")
    response = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stack.scalar("SELECT count(*) FROM pipelines") == before


def test_unknown_stage_is_404(stack: Stack) -> None:
    pipeline = _create(stack)
    response = stack.call(
        "PATCH",
        f"/v1/pipelines/{pipeline['id']}/stages/{uuid.uuid4()}",
        stack.user(NORTH),
        if_match=1,
        json={"name": "x"},
    )
    assert response.status_code == 404
