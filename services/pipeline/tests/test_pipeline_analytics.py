"""Sales analytics against the real service: funnel, time in stage from the stage history,
cycle, contacts per won deal from interactions' events, won deals per employee, monitoring
and forecast, limited to the caller's directions, as JSON and as .xlsx."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from clientele_shared.events.catalog import INTERACTION_LOG, REGISTRY
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.interactions import InteractionLogged
from openpyxl import load_workbook
from pipeline_testkit import Stack


@pytest.fixture(scope="module")
def direction() -> str:
    """A direction of this run alone (the test database keeps earlier runs' deals)."""
    return f"a{uuid.uuid4().hex[:10]}"


def _contact(deal: dict[str, Any], interaction_id: uuid.UUID) -> Envelope:
    payload = InteractionLogged(
        interaction_id=interaction_id,
        organization_id=uuid.UUID(deal["organization_id"]),
        version=1,
        kind="call",
        direction="out",
        status="done",
        occurred_at=datetime.now(UTC),
        subject="Звонок",
        deal_id=uuid.UUID(deal["id"]),
    )
    spec = REGISTRY.latest("interactions.interaction.logged")
    return Envelope(
        type=spec.name,
        schema_version=spec.version,
        producer="interactions",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="test", kind="user"),
        aggregate_id=str(interaction_id),
        payload=payload.model_dump(mode="json"),
    )


@pytest.fixture(scope="module")
def sales(stack: Stack, direction: str) -> dict[str, Any]:
    """A pipeline where one deal was won (two contacts), one negotiates, one was lost at once,
    one is watched and one is new."""
    me = stack.user([direction])
    stages = [
        {"name": "Новая", "kind": "open", "probability": 10},
        {"name": "Переговоры", "kind": "open", "probability": 50},
        {"name": "Наблюдение", "kind": "monitoring"},
        {"name": "Выиграна", "kind": "won", "probability": 100},
        {"name": "Проиграна", "kind": "lost"},
    ]
    body = {
        "name": "Аналитика",
        "directions": [direction],
        "stages": stages,
        "lost_reasons": ["Дорого"],
    }
    pipeline = stack.call("POST", "/v1/pipelines", me, json=body).json()
    ids = [stage["id"] for stage in pipeline["stages"]]
    client = stack.organization([direction])
    seller = stack.employee([direction])
    close = datetime.now(UTC).date().isoformat()

    def deal(amount: str, **extra: Any) -> dict[str, Any]:
        draft = {
            "pipeline_id": pipeline["id"],
            "organization_id": str(client),
            "title": "Сделка",
            "amount": amount,
            "currency": "RUB",
            "responsible_employee_id": str(seller),
            "expected_close_date": close,
            **extra,
        }
        response = stack.call("POST", "/v1/deals", me, json=draft)
        assert response.status_code == 201, response.text
        return response.json()

    def move(found: dict[str, Any], stage: str, version: int, **extra: Any) -> None:
        response = stack.call(
            "POST",
            f"/v1/deals/{found['id']}/move",
            me,
            if_match=version,
            json={"stage_id": stage, **extra},
        )
        assert response.status_code == 200, response.text

    won, talking, lost = deal("2500.50"), deal("1000.00"), deal("10.00")
    deal("5.00", stage_id=ids[2])
    deal("333.33")
    move(won, ids[1], 1)
    move(won, ids[3], 2)
    move(talking, ids[1], 1)
    move(lost, ids[4], 1, lost_reason="Дорого")
    first, second = uuid.uuid4(), uuid.uuid4()
    contacts = [_contact(won, first), _contact(won, first), _contact(won, second)]
    stack.send(INTERACTION_LOG, [*contacts, _contact(talking, uuid.uuid4())])
    stack.wait_until(
        "SELECT count(*) FROM deal_contacts WHERE deal_id = :id", 2, "the contacts", id=won["id"]
    )
    return {"pipeline": pipeline, "ids": ids, "seller": seller, "won": won}


def test_report(stack: Stack, direction: str, sales: dict[str, Any]) -> None:
    response = stack.call("GET", "/v1/analytics/sales", stack.user([direction]))
    assert response.status_code == 200, response.text
    report = response.json()
    [pipeline] = report["pipelines"]
    ids = sales["ids"]
    assert [(row["stage_id"], row["reached"]) for row in pipeline["funnel"]] == [
        (ids[0], 4),  # the watched deal entered no open stage
        (ids[1], 2),
        (ids[3], 1),
    ]
    assert [row["conversion"] for row in pipeline["funnel"]] == [None, 0.5, 0.5]
    assert pipeline["funnel"][2]["from_first"] == 0.25
    stays = {row["stage_id"]: row for row in pipeline["time_in_stage"]}
    assert {stage: row["stays"] for stage, row in stays.items()} == {ids[0]: 3, ids[1]: 1}
    expected = stack.scalar(
        """
        SELECT round(avg(extract(epoch FROM moved_at - previous)) / 86400, 4)
        FROM (SELECT from_stage_id, moved_at,
                     lag(moved_at) OVER (PARTITION BY deal_id ORDER BY id) AS previous
              FROM deal_stage_history WHERE pipeline_id = :p) h
        WHERE from_stage_id = :s
        """,
        p=sales["pipeline"]["id"],
        s=ids[0],
    )
    assert stays[ids[0]]["average_days"] == pytest.approx(float(expected), abs=1e-4)
    assert pipeline["monitoring"] == 1
    assert report["won_deals"] == 1
    assert report["average_contacts_per_won_deal"] == 2.0
    assert report["average_cycle_days"] is not None
    [won] = report["won_by_employee"]
    assert won["employee_id"] == str(sales["seller"])
    assert (won["count"], won["amount"], won["currency"]) == (1, "2500.50", "RUB")
    assert won["period"] == datetime.now(UTC).date().replace(day=1).isoformat()
    [forecast] = report["forecast"]
    assert (forecast["deals"], forecast["amount"]) == (2, "533.33")


def test_other_directions_see_nothing(stack: Stack, sales: dict[str, Any]) -> None:
    other = stack.user([f"b{uuid.uuid4().hex[:10]}"])
    report = stack.call("GET", "/v1/analytics/sales", other).json()
    assert report["won_deals"] == 0
    assert report["forecast"] == []
    hidden = f"/v1/analytics/sales?pipeline_id={sales['pipeline']['id']}"
    assert stack.call("GET", hidden, other).status_code == 404


def test_bad_parameters(stack: Stack, direction: str) -> None:
    me = stack.user([direction])
    for query in (
        "tz=Mars/Olympus",
        "tz=../../etc/passwd",
        "tz=Europe",  # a folder of zones
        "date_from=2027-01-02&date_to=2027-01-01",
        "period=decade",
        "date_from=2027-13-01",
    ):
        response = stack.call("GET", f"/v1/analytics/sales?{query}", me)
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_workbook(stack: Stack, direction: str, sales: dict[str, Any]) -> None:
    response = stack.call(
        "GET", "/v1/analytics/sales.xlsx?tz=Europe/Moscow&period=quarter", stack.user([direction])
    )
    assert response.status_code == 200, response.text
    book = load_workbook(io.BytesIO(response.content), read_only=True)
    assert book.sheetnames == [
        "Funnel",
        "Time in stage",
        "Monitoring",
        "Won by employee",
        "Forecast",
        "Summary",
    ]
    rows = list(book["Won by employee"].iter_rows(values_only=True))
    assert rows[0] == ("employee_id", "employee", "period", "currency", "deals", "amount")
    employee_id, _, _, currency, count, amount = rows[1]
    assert employee_id == str(sales["seller"])
    assert (currency, count, amount) == ("RUB", 1, 2500.5)
    funnel = list(book["Funnel"].iter_rows(values_only=True))
    assert funnel[1][0] == sales["pipeline"]["id"]
    assert funnel[1][5] == 4


KEPT_AND_RECOMPUTED = """
    WITH kept AS (
        SELECT 'stay' AS kind, stage_id, directions, day, sum(stays) AS n, sum(seconds) AS seconds
        FROM stage_stay_totals WHERE pipeline_id = :p
        GROUP BY stage_id, directions, day HAVING sum(stays) <> 0
        UNION ALL
        SELECT 'funnel', stage_id, directions, day, sum(deals), NULL
        FROM funnel_totals WHERE pipeline_id = :p
        GROUP BY stage_id, directions, day HAVING sum(deals) <> 0
    ), recomputed AS (
        SELECT 'stay', h.from_stage_id, d.directions, (h.moved_at AT TIME ZONE 'UTC')::date,
            count(*), sum(extract(epoch FROM h.moved_at - h.from_entered_at))
        FROM deal_stage_history h JOIN deals d ON d.id = h.deal_id
        WHERE h.pipeline_id = :p AND h.from_stage_id IS NOT NULL
            AND d.deleted_at IS NULL AND NOT d.client_hidden
        GROUP BY 2, 3, 4
        UNION ALL
        SELECT 'funnel', f.position_stage, d.directions, (d.created_at AT TIME ZONE 'UTC')::date,
            count(*), NULL
        FROM deals d JOIN LATERAL (
            SELECT s.id AS position_stage FROM deal_stage_history h
            JOIN stages s ON s.id = h.to_stage_id
            WHERE h.deal_id = d.id AND s.kind IN ('open', 'won')
            ORDER BY s.position DESC, s.id DESC LIMIT 1
        ) f ON true
        WHERE d.pipeline_id = :p AND d.deleted_at IS NULL AND NOT d.client_hidden
        GROUP BY 2, 3, 4
    )
    SELECT json_build_object(
        'kept', (SELECT count(*) FROM kept),
        'differ', (SELECT count(*) FROM (
            (TABLE kept EXCEPT ALL TABLE recomputed)
            UNION ALL (TABLE recomputed EXCEPT ALL TABLE kept)) diff))
"""


def test_totals_match_a_recomputation_from_the_history(
    stack: Stack, direction: str, sales: dict[str, Any]
) -> None:
    """The per-day totals the report reads (ADR 44) equal the stage history recomputed, after
    moves, a deletion, a restore and a reordering of the stages."""
    me = stack.user([direction])
    pipeline, ids, won = sales["pipeline"]["id"], sales["ids"], sales["won"]["id"]

    def check() -> None:
        found = stack.scalar(KEPT_AND_RECOMPUTED, p=pipeline)
        assert found["kept"] > 0
        assert found["differ"] == 0, found

    def first_reached() -> int:
        report = stack.call("GET", f"/v1/analytics/sales?pipeline_id={pipeline}", me).json()
        return int(report["pipelines"][0]["funnel"][0]["reached"])

    check()
    version = int(stack.scalar("SELECT version FROM deals WHERE id = :id", id=won))
    deleted = stack.call("DELETE", f"/v1/deals/{won}", me, if_match=version)
    assert deleted.status_code == 204, deleted.text
    check()
    assert first_reached() == 3
    restored = stack.call("POST", f"/v1/deals/{won}/restore", me, if_match=version + 1)
    assert restored.status_code == 200, restored.text
    check()
    assert first_reached() == 4

    def reorder(order: list[str]) -> None:
        current = stack.call("GET", f"/v1/pipelines/{pipeline}", me)
        response = stack.call(
            "PUT",
            f"/v1/pipelines/{pipeline}/stages/order",
            me,
            if_match=int(current.headers["ETag"].split('"')[1]),
            json={"stage_ids": order},
        )
        assert response.status_code == 200, response.text

    reorder([ids[1], ids[0], *ids[2:]])
    check()
    reorder(ids)
    check()
