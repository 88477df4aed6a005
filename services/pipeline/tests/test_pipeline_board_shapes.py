"""The board's two ways to its first pages give the same board: few matches ranked per stage
(the default here, with few deals) and each column read in board order (forced by
``BOARD_SPARSE_MATCHES=0``); a column without matches stays empty either way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import running
from pipeline_testkit import DEFAULT_STAGES, Stack

NORTH = ["north"]


@pytest.fixture(scope="module")
def in_board_order(
    infra: Infrastructure,
    service_env: dict[str, str],
    pipeline_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = {**service_env, "BOARD_SPARSE_MATCHES": "0", "RUN_CONSUMERS": "false"}
    logs = tmp_path_factory.mktemp("pipeline-board-order")
    with running("pipeline", infra, env, pipeline_migrated, issuer, logs) as started:
        yield started


def _board(stack: Stack, pipeline: dict[str, Any], **params: Any) -> list[dict[str, Any]]:
    path = f"/v1/pipelines/{pipeline['id']}/board"
    response = stack.call("GET", path, stack.user(NORTH), params={"limit": 2, **params})
    assert response.status_code == 200, response.text
    return [
        {
            "count": column["count"],
            "deals": [deal["id"] for deal in column["deals"]],
            "next": column["next_cursor"] is not None,
        }
        for column in response.json()["columns"]
    ]


def test_both_shapes_give_the_same_board(stack: Stack, in_board_order: Stack) -> None:
    body = {"name": "Формы", "directions": NORTH, "stages": DEFAULT_STAGES}
    pipeline = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body).json()
    client = stack.organization(NORTH, name=f"ООО «Форма {uuid.uuid4().hex[:6]}»")
    seller, other = stack.employee(NORTH), stack.employee(NORTH)
    created = []
    for index in range(5):
        draft = {
            "pipeline_id": pipeline["id"],
            "organization_id": str(client),
            "title": f"Сделка {index}",
            "responsible_employee_id": str(seller if index % 2 == 0 else other),
        }
        response = stack.call("POST", "/v1/deals", stack.user(NORTH), json=draft)
        assert response.status_code == 201, response.text
        created.append(response.json()["id"])
    newest_first = created[::-1]
    mine = [deal for n, deal in enumerate(created) if n % 2 == 0][::-1]
    expected = {
        (): [{"count": 5, "deals": newest_first[:2], "next": True}],
        (("responsible_employee_id", str(seller)),): [
            {"count": 3, "deals": mine[:2], "next": True}
        ],
        (("q", "Сделка 3"),): [{"count": 1, "deals": [created[3]], "next": False}],
    }
    empty = {"count": 0, "deals": [], "next": False}
    for params, first_column in expected.items():
        for shape in (stack, in_board_order):
            board = _board(shape, pipeline, **dict(params))
            assert board == first_column + [empty] * (len(DEFAULT_STAGES) - 1), (params, shape)
