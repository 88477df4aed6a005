"""Effectiveness figures against hand-computed values: one event and a period, filtered by the
caller's directions."""

from __future__ import annotations

import io
import uuid
from datetime import datetime
from typing import Any

from campaigns_testkit import Stack, create_event
from openpyxl import load_workbook

NORTH = ["north"]


def _event_with_figures(
    stack: Stack, directions: list[str], start: str, statuses: list[str], lines: list[Any]
) -> dict[str, Any]:
    event = create_event(
        stack, directions, planned_start=start, planned_end=start.replace("T10", "T18")
    )
    user = stack.user(directions)
    base = f"/v1/campaigns/{event['id']}"
    orgs = [stack.organization(directions) for _ in statuses]
    added = stack.call(
        "POST",
        f"{base}/participants",
        user,
        json={"participants": [{"organization_id": str(org)} for org in orgs]},
    ).json()["added"]
    for participant, status in zip(added, statuses, strict=True):
        if status != "invited":
            response = stack.call(
                "PATCH",
                f"{base}/participants/{participant['id']}",
                user,
                if_match=1,
                json={"status": status},
            )
            assert response.status_code == 200
    budget = stack.call("PUT", f"{base}/budget", user, if_match=1, json={"lines": lines})
    assert budget.status_code == 200, budget.text
    return event


def test_event_and_period_figures(stack: Stack) -> None:
    year = 2100 + uuid.uuid4().int % 7000  # a period no earlier run of the suite has used
    start = f"{year}-05-12T10:00:00+00:00"
    first = _event_with_figures(
        stack,
        NORTH,
        start,
        ["attended", "attended", "no_show", "invited", "confirmed", "attended", "cancelled"],
        [
            {"category": "venue", "currency": "RUB", "planned": "50000", "actual": "60000"},
            {"category": "catering", "currency": "RUB", "planned": "10000", "actual": "10000.01"},
            {
                "category": "consumables",
                "currency": "RUB",
                "planned": "900",
                "actual": "1000",
                "quantity": "4",
                "unit": "пачка бумаги",
            },
            {"category": "advertising", "currency": "EUR", "actual": "100"},
        ],
    )
    north = stack.user(NORTH)
    figures = stack.call("GET", f"/v1/campaigns/{first['id']}/effectiveness", north)
    assert figures.status_code == 200, figures.text
    report = figures.json()
    assert report["participants"] == 7
    assert report["attendees"] == 3
    assert report["by_status"] == {
        "invited": 1,
        "confirmed": 1,
        "registered": 0,
        "attended": 3,
        "no_show": 1,
        "cancelled": 1,
    }
    assert report["by_stage"][0]["participants"] == 7
    assert [s["participants"] for s in report["by_stage"][1:]] == [0, 0, 0]
    # RUB actual 60000 + 10000.01 + 1000 = 71000.01; / 7 = 10142.858... ; / 3 = 23666.67
    assert report["costs"] == [
        {
            "currency": "EUR",
            "planned": "0.00",
            "actual": "100.00",
            "per_participant": "14.29",
            "per_attendee": "33.33",
        },
        {
            "currency": "RUB",
            "planned": "60900.00",
            "actual": "71000.01",
            "per_participant": "10142.86",
            "per_attendee": "23666.67",
        },
    ]
    assert report["consumables"] == [{"currency": "RUB", "planned": "900.00", "actual": "1000.00"}]
    assert report["consumables_used"] == [{"unit": "пачка бумаги", "quantity": "4.000"}]
    second = _event_with_figures(
        stack,
        NORTH,
        f"{year}-05-20T10:00:00+00:00",
        ["attended"],
        [{"category": "venue", "currency": "RUB", "actual": "8999.99"}],
    )
    _event_with_figures(  # another direction: never in the north's figures
        stack,
        ["south"],
        f"{year}-05-15T10:00:00+00:00",
        ["attended", "attended"],
        [{"category": "venue", "currency": "RUB", "actual": "1000000"}],
    )
    period = stack.call(
        "GET",
        "/v1/effectiveness",
        north,
        params={"from": f"{year}-05-01T00:00:00Z", "to": f"{year}-06-01T00:00:00Z"},
    )
    assert period.status_code == 200, period.text
    total = period.json()
    assert [e["campaign_id"] for e in total["events"]] == [first["id"], second["id"]]
    assert total["participants"] == 8
    assert total["attendees"] == 4
    rub = next(c for c in total["costs"] if c["currency"] == "RUB")
    # 71000.01 + 8999.99 = 80000.00; / 8 = 10000.00; / 4 = 20000.00
    assert rub == {
        "currency": "RUB",
        "planned": "60900.00",
        "actual": "80000.00",
        "per_participant": "10000.00",
        "per_attendee": "20000.00",
    }


def test_period_bad_input(stack: Stack) -> None:
    north = stack.user(NORTH)
    for params in [
        {"from": "2031-06-01T00:00:00Z", "to": "2031-05-01T00:00:00Z"},
        {"from": "2031-05-01T00:00:00", "to": "2031-06-01T00:00:00Z"},
        {"from": "2031-05-01T00:00:00Z"},
        {"from": "yesterday", "to": "2031-06-01T00:00:00Z"},
    ]:
        response = stack.call("GET", "/v1/effectiveness", north, params=params)
        assert response.status_code == 422, (params, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    empty = stack.call(
        "GET",
        "/v1/effectiveness",
        stack.user(["nowhere"]),
        params={"from": "2031-05-01T00:00:00Z", "to": "2031-06-01T00:00:00Z"},
    ).json()
    assert empty["events"] == []
    assert empty["participants"] == 0
    assert empty["costs"] == []
    assert empty["consumables_used"] == []


def _sheets(content: bytes) -> dict[str, list[tuple[Any, ...]]]:
    book = load_workbook(io.BytesIO(content))
    return {sheet.title: list(sheet.iter_rows(values_only=True)) for sheet in book.worksheets}


def test_figures_as_xlsx_with_numbers_as_numbers(stack: Stack) -> None:
    year = 2100 + uuid.uuid4().int % 7000
    start = f"{year}-07-01T10:00:00+00:00"
    direction = f"d-{uuid.uuid4().hex[:8]}"
    event = _event_with_figures(
        stack,
        [direction],
        start,
        ["attended", "attended", "invited"],
        [
            {"category": "venue", "currency": "RUB", "planned": "1000", "actual": "1000.01"},
            {
                "category": "consumables",
                "currency": "RUB",
                "actual": "200",
                "quantity": "2.5",
                "unit": "пачка",
            },
        ],
    )
    user = stack.user([direction])
    renamed = stack.call(
        "PATCH",
        f"/v1/campaigns/{event['id']}",
        user,
        if_match=2,
        json={"title": '=HYPERLINK("http://evil.example")'},
    )
    assert renamed.status_code == 200, renamed.text
    answer = stack.call("GET", f"/v1/campaigns/{event['id']}/effectiveness.xlsx", user)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    sheets = _sheets(answer.content)
    assert list(sheets) == ["Сводка", "Затраты", "Сделки", "Расходные материалы", "Этапы"]
    title = '=HYPERLINK("http://evil.example")'  # text, not a formula
    summary = sheets["Сводка"]
    assert summary[1][:4] == (title, "planned", datetime(year, 7, 1, 10), 3)
    assert summary[1][4:10] == (1, 0, 0, 2, 0, 0)  # by status, as integers
    assert summary[1][10:14] == (0, 0, 3, 0)
    assert summary[1][14] == 0  # conversion: no deals, 0 of 3 organizations
    # RUB actual 1000.01 + 200 = 1200.01; / 3 = 400.00; / 2 attendees = 600.01 (half up)
    assert sheets["Затраты"][1] == (title, "RUB", 1000, 1200.01, 400, 600.01)
    assert sheets["Расходные материалы"][1:] == [
        (
            title,
            "RUB",
            0,
            200,
        ),
        (title, "пачка", None, 2.5),
    ]
    assert [row[1:] for row in sheets["Этапы"][1:]] == [
        ("Подготовка", 3),
        ("Приглашения", 0),
        ("Мероприятие", 0),
        ("Постобработка", 0),
    ]
    book = load_workbook(io.BytesIO(answer.content))
    costs = book["Затраты"]
    assert costs["D2"].data_type == "n"
    assert costs["D2"].number_format == "#,##0.00"
    assert book["Сводка"]["A2"].data_type == "s"
    assert book["Сводка"]["O2"].number_format == "0.00%"

    period = stack.call(
        "GET",
        "/v1/effectiveness.xlsx",
        user,
        params={"from": f"{year}-07-01T00:00:00Z", "to": f"{year}-08-01T00:00:00Z"},
    )
    assert period.status_code == 200, period.text
    rows = _sheets(period.content)["Сводка"]
    assert [row[0] for row in rows[1:]] == [title, "Итого"]
    assert rows[2][3] == 3
    assert (
        stack.call(
            "GET", f"/v1/campaigns/{event['id']}/effectiveness.xlsx", stack.user(["elsewhere"])
        ).status_code
        == 404
    )
