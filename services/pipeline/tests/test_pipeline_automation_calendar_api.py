"""Business calendars over the API against the real stack (ADR 34): the company's and a
direction's, their access and versions, and delays in working time that use them."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from clientele_pipeline.automation.calendar import (
    BusinessCalendar,
    CalendarSettings,
    Delay,
)
from pipeline_testkit import DEFAULT_STAGES, Stack

CALENDARS = "/v1/automation/calendars"
RULES = "/v1/automation/rules"
CAL = ["calendar-east"]


def test_the_company_calendar_is_russian_by_default_and_admins_change_it(stack: Stack) -> None:
    user, admin = stack.user(CAL), stack.user(CAL, roles=("admin",), subject="root")
    company = stack.call("GET", f"{CALENDARS}/*", user)
    assert company.status_code == 200, company.text
    assert company.json()["settings"]["holidays_country"] == "RU"
    assert company.json()["settings"]["timezone"] == "Europe/Moscow"
    body = {"days": {"2030-01-15": {"working": False, "note": "день компании"}}}
    assert stack.call("PUT", f"{CALENDARS}/*", user, json=body).status_code == 403
    created = stack.call("PUT", f"{CALENDARS}/*", admin, json=body)
    assert created.status_code == 200, created.text
    assert created.headers["ETag"] == 'W/"1"'
    assert created.json()["settings"]["workdays"] == [1, 2, 3, 4, 5]
    assert stack.call("PUT", f"{CALENDARS}/*", admin, json=body).status_code == 428
    assert stack.call("PUT", f"{CALENDARS}/*", admin, json=body, if_match=7).status_code == 412
    again = stack.call("PUT", f"{CALENDARS}/*", admin, json=body, if_match=1)
    assert again.json()["version"] == 2
    audit = stack.call("GET", f"{CALENDARS}/*/audit", user).json()
    assert [entry["action"] for entry in audit] == ["created", "updated"]
    # 23 February over the API: Friday 17:30 + 1 working hour is Tuesday 09:30
    due = stack.call(
        "GET",
        f"{CALENDARS}/*/due",
        user,
        params={"from": "2026-02-20T17:30:00+03:00", "amount": 1, "unit": "working_hours"},
    )
    assert due.status_code == 200, due.text
    assert datetime.fromisoformat(due.json()["due_at"]) == datetime(2026, 2, 24, 6, 30, tzinfo=UTC)
    day_off = stack.call(
        "GET",
        f"{CALENDARS}/*/due",
        user,
        params={"from": "2030-01-15T10:00:00+03:00", "at_working_time": "true"},
    )
    assert datetime.fromisoformat(day_off.json()["due_at"]) == datetime(2030, 1, 16, 6, tzinfo=UTC)


def test_bad_calendars_are_problems(stack: Stack) -> None:
    user = stack.user(CAL)
    for body in (
        {"settings": {"timezone": "Mars/Olympus"}},
        {"settings": {"work_start": "19:00", "work_end": "09:00"}},
        {"settings": {"workdays": [8]}},
        {"settings": {"holidays_country": "ZZ"}},
        {"days": {"2026-13-01": {"working": True}}},
        {"days": {"2026-12-01": {"working": True, "note": "a\u0000b"}}},
        {"extra": 1},
    ):
        response = stack.call("PUT", f"{CALENDARS}/{CAL[0]}", user, json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert stack.call("GET", f"{CALENDARS}/NOT A DIRECTION", user).status_code == 404
    assert stack.call("GET", f"{CALENDARS}/{CAL[0]}/due", user).status_code == 422


def test_a_direction_calendar_bounds_access_and_times_a_rule_delay(stack: Stack) -> None:
    user, other = stack.user(CAL), stack.user(["calendar-west"])
    today = datetime.now(UTC).date()
    days = {str(today + timedelta(days=n)): {"working": False} for n in range(2)}
    body = {
        "settings": {"timezone": "UTC", "work_start": "09:00", "work_end": "18:00"},
        "days": days,
    }
    assert stack.call("PUT", f"{CALENDARS}/{CAL[0]}", other, json=body).status_code == 404
    saved = stack.call("PUT", f"{CALENDARS}/{CAL[0]}", user, json=body)
    assert saved.status_code == 200, saved.text
    assert stack.call("GET", f"{CALENDARS}/{CAL[0]}", other).status_code == 404
    assert [c["scope"] for c in stack.call("GET", CALENDARS, other).json()] == ["*"]
    assert CAL[0] in [c["scope"] for c in stack.call("GET", CALENDARS, user).json()]

    pipeline = stack.call(
        "POST",
        "/v1/pipelines",
        user,
        json={"name": "Календарь", "directions": CAL, "stages": DEFAULT_STAGES},
    ).json()
    rule = stack.call(
        "POST",
        RULES,
        user,
        json={
            "pipeline_id": pipeline["id"],
            "name": "Через два рабочих часа",
            "trigger": {"kind": "manual"},
            "actions": [
                {
                    "kind": "add_tags",
                    "tags": ["later"],
                    "delay": {"amount": 2, "unit": "working_hours"},
                },
                {"kind": "add_tags", "tags": ["morning"], "at_working_time": True},
                {
                    "kind": "add_tags",
                    "tags": ["both"],
                    "delay_seconds": 5,
                    "delay": {"amount": 1, "unit": "hours"},
                },
            ],
        },
    )
    assert rule.status_code == 422  # `delay_seconds` and `delay` together
    rule = stack.call(
        "POST",
        RULES,
        user,
        json={
            "pipeline_id": pipeline["id"],
            "name": "Через два рабочих часа",
            "trigger": {"kind": "manual"},
            "actions": [
                {
                    "kind": "add_tags",
                    "tags": ["later"],
                    "delay": {"amount": 2, "unit": "working_hours"},
                },
                {"kind": "add_tags", "tags": ["morning"], "at_working_time": True},
            ],
        },
    )
    assert rule.status_code == 201, rule.text
    deal = stack.call(
        "POST",
        "/v1/deals",
        user,
        json={
            "pipeline_id": pipeline["id"],
            "organization_id": str(stack.organization(CAL)),
            "title": "Сделка",
        },
    ).json()
    run = stack.call("POST", f"{RULES}/{rule.json()['id']}/run", user, json={"deal_id": deal["id"]})
    assert run.status_code == 200, run.text
    fired_at = datetime.fromisoformat(run.json()["started_at"])
    calendar = BusinessCalendar(
        CalendarSettings(timezone="UTC", work_start=time(9), work_end=time(18)),
        overrides={date.fromisoformat(day): False for day in days},
    )
    steps: list[dict[str, Any]] = run.json()["steps"]
    assert [step["status"] for step in steps] == ["scheduled", "scheduled"]
    expected = [
        calendar.due(fired_at, Delay(amount=2, unit="working_hours"), at_working_time=False),
        calendar.due(fired_at, None, at_working_time=True),
    ]
    assert [datetime.fromisoformat(step["detail"]["due_at"]) for step in steps] == expected
    assert expected[1].date() >= today + timedelta(days=2)  # not on the direction's days off
