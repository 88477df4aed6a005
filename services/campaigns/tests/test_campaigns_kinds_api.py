"""Kinds of marketing events as a catalogue: administrators keep it (audited), everybody reads
it, an event's kind is checked against it on every write and shown by name in reads, in the
events published (``created`` and ``restored`` v2) and in the effectiveness report's grouping."""

from __future__ import annotations

import io
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from campaigns_testkit import Stack, create_event, event_body
from clientele_shared.events.catalog import CAMPAIGN_EVENTS
from openpyxl import load_workbook

NORTH = ["north"]
KINDS = "/v1/event-kinds"


def _admin(stack: Stack) -> dict[str, str]:
    return stack.user([], roles=["admin"], subject="root")


def _code() -> str:
    return f"k{uuid.uuid4().hex[:12]}"


def _kind(stack: Stack, **names: str) -> dict[str, Any]:
    body = {"code": _code(), "name_ru": "Круглый стол", "name_en": "Round table", **names}
    created = stack.call("POST", KINDS, _admin(stack), json=body)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_defaults_are_seeded_and_everybody_reads_them(stack: Stack) -> None:
    listed = stack.call("GET", KINDS, stack.user(NORTH)).json()
    defaults = {kind["code"]: kind for kind in listed}
    assert {"seminar", "conference", "exhibition", "webinar", "mailing_campaign", "other"} <= set(
        defaults
    )
    assert defaults["seminar"]["name_ru"] == "Семинар"
    assert defaults["webinar"]["name_en"] == "Webinar"
    one = stack.call("GET", f"{KINDS}/conference", stack.user(["south"], roles=["marketer"]))
    assert one.status_code == 200
    assert one.json()["name_ru"] == "Конференция"
    assert stack.call("GET", f"{KINDS}/nothing-like-it", stack.user(NORTH)).status_code == 404
    assert stack.call("GET", f"{KINDS}/Not%20a%20code", stack.user(NORTH)).status_code == 422
    assert httpx.get(stack.url + KINDS).status_code == 401


def test_create_rename_archive_with_if_match_and_audit(stack: Stack) -> None:
    admin = _admin(stack)
    kind = _kind(stack)
    path = f"{KINDS}/{kind['code']}"
    assert kind["archived"] is False
    assert kind["version"] == 1
    read = stack.call("GET", path, stack.user(NORTH))
    assert read.json() == kind
    assert read.headers["ETag"] == 'W/"1"'
    assert stack.call("PATCH", path, admin, json={"name_en": "Panel"}).status_code == 428
    assert stack.call("PATCH", path, admin, if_match=5, json={"name_en": "Panel"}).status_code == (
        412
    )
    renamed = stack.call("PATCH", path, admin, if_match=1, json={"name_en": "Panel"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.headers["ETag"] == 'W/"2"'
    same = stack.call("PATCH", path, admin, if_match=2, json={"name_en": "Panel"})
    assert same.json()["version"] == 2
    archived = stack.call("PATCH", path, admin, if_match=2, json={"archived": True})
    assert archived.json()["archived"] is True
    assert kind["code"] not in {k["code"] for k in stack.call("GET", KINDS, admin).json()}
    everything = stack.call("GET", KINDS, admin, params={"include_archived": "true"}).json()
    assert kind["code"] in {k["code"] for k in everything}
    audit = stack.call("GET", f"{path}/audit", admin).json()
    assert [entry["action"] for entry in audit] == ["created", "updated", "updated"]
    assert audit[0]["changes"]["name_ru"] == {"old": None, "new": "Круглый стол"}
    assert audit[1]["changes"] == {"name_en": {"old": "Round table", "new": "Panel"}}
    assert audit[2]["changes"] == {"archived": {"old": False, "new": True}}
    assert audit[2]["actor_subject"] == "root"


@pytest.mark.parametrize("roles", [["sales"], ["marketer"], ["head_of_sales"]])
def test_only_administrators_write(stack: Stack, roles: list[str]) -> None:
    user = stack.user(NORTH, roles=roles)
    code = _code()
    body = {"code": code, "name_ru": "Ярмарка", "name_en": "Fair"}
    assert stack.call("POST", KINDS, user, json=body).status_code == 403
    assert stack.call("GET", f"{KINDS}/{code}", user).status_code == 404
    patch = stack.call("PATCH", f"{KINDS}/seminar", user, if_match=1, json={"archived": True})
    assert patch.status_code == 403
    assert stack.call("GET", f"{KINDS}/seminar/audit", user).status_code == 403
    assert stack.call("GET", f"{KINDS}/seminar", user).json()["archived"] is False


@pytest.mark.parametrize(
    "body",
    [
        {"name_ru": "Имя\u0000"},
        {"name_ru": "x" * 201},
        {"name_en": ""},
        {"name_en": "two\nlines"},
        {"code": "Seminar"},
        {"code": "k" * 31},
        {"code": "с-кириллицей"},
        {"code": ""},
        {"code": None},
        {"archived": False},
        {"unknown": 1},
    ],
)
def test_bad_kind_input_is_a_problem_and_writes_nothing(stack: Stack, body: dict[str, Any]) -> None:
    admin = _admin(stack)
    code = _code()
    draft = {"code": code, "name_ru": "Ярмарка", "name_en": "Fair", **body}
    response = stack.call("POST", KINDS, admin, json=draft)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert stack.scalar("SELECT count(*) FROM event_kinds WHERE code = :c", c=code) == 0
    kind = _kind(stack)
    patch = {key: value for key, value in body.items() if key != "archived"}
    if "code" in patch:
        patch = {"code": "anything"}  # a kind's code never changes
    patch = patch or {"archived": None}
    answer = stack.call("PATCH", f"{KINDS}/{kind['code']}", admin, if_match=1, json=patch)
    assert answer.status_code == 422, answer.text
    assert stack.call("GET", f"{KINDS}/{kind['code']}", admin).json() == kind


def test_the_same_code_twice_at_once_creates_one(stack: Stack) -> None:
    admin = _admin(stack)
    body = {"code": _code(), "name_ru": "Форум", "name_en": "Forum"}
    barrier = threading.Barrier(2)

    def create(_: int) -> int:
        barrier.wait()
        return stack.call("POST", KINDS, admin, json=body).status_code

    with ThreadPoolExecutor(max_workers=2) as pool:
        statuses = sorted(pool.map(create, range(2)))
    assert statuses == [201, 409]
    assert stack.scalar("SELECT count(*) FROM event_kinds WHERE code = :c", c=body["code"]) == 1
    audited = stack.scalar(
        "SELECT count(*) FROM audit_log"
        " WHERE entity_kind = 'event_kind' AND changes->'code'->>'new' = :c",
        c=body["code"],
    )
    assert audited == 1
    again = stack.call("POST", KINDS, admin, json=body)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"


def test_an_event_takes_a_custom_kind_by_code_and_shows_its_names(stack: Stack) -> None:
    kind = _kind(stack, name_ru="Ярмарка", name_en="Trade fair")
    start = datetime(2000, 1, 1, tzinfo=UTC) + timedelta(seconds=uuid.uuid4().int % 10**8)
    event = create_event(
        stack,
        kind=kind["code"],
        planned_start=start.isoformat(),
        planned_end=(start + timedelta(hours=8)).isoformat(),
    )
    assert (event["kind"], event["kind_name_ru"], event["kind_name_en"]) == (
        kind["code"],
        "Ярмарка",
        "Trade fair",
    )
    north = stack.user(NORTH)
    path = f"/v1/campaigns/{event['id']}"
    changed = stack.call("PATCH", path, north, if_match=1, json={"kind": "webinar"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["kind_name_ru"] == "Вебинар"
    back = stack.call("PATCH", path, north, if_match=2, json={"kind": kind["code"]})
    assert back.json()["kind_name_en"] == "Trade fair"
    renamed = stack.call(
        "PATCH", f"{KINDS}/{kind['code']}", _admin(stack), if_match=1, json={"name_ru": "Базар"}
    )
    assert renamed.status_code == 200
    assert stack.call("GET", path, north).json()["kind_name_ru"] == "Базар"
    window = {"from": start.isoformat(), "to": (start + timedelta(seconds=1)).isoformat()}
    listed = stack.call("GET", "/v1/campaigns", north, params=window).json()
    assert [(e["id"], e["kind_name_ru"]) for e in listed] == [(event["id"], "Базар")]
    audit = stack.call("GET", f"{path}/audit", north).json()
    assert audit[1]["changes"]["kind"] == {"old": kind["code"], "new": "webinar"}


def test_an_unknown_or_archived_kind_is_refused_naming_the_field(stack: Stack) -> None:
    north = stack.user(NORTH)
    kind = _kind(stack)
    event = create_event(stack, kind=kind["code"])
    archived = stack.call(
        "PATCH", f"{KINDS}/{kind['code']}", _admin(stack), if_match=1, json={"archived": True}
    )
    assert archived.status_code == 200
    for code, problem in [(_code(), "unknown_reference"), (kind["code"], "archived_reference")]:
        title = f"Вид {uuid.uuid4()}"
        response = stack.call(
            "POST", "/v1/campaigns", north, json=event_body(NORTH, kind=code, title=title)
        )
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        error = response.json()["errors"][0]
        assert error["type"] == problem
        assert error["location"] == ["body", "kind"]
        assert stack.scalar("SELECT count(*) FROM marketing_events WHERE title = :t", t=title) == 0
    # an event keeps its archived kind and other changes still go through
    path = f"/v1/campaigns/{event['id']}"
    kept = stack.call("PATCH", path, north, if_match=1, json={"title": "Другое название"})
    assert kept.status_code == 200, kept.text
    assert kept.json()["kind"] == kind["code"]
    webinar = create_event(stack, kind="webinar")
    refused = stack.call(
        "PATCH", f"/v1/campaigns/{webinar['id']}", north, if_match=1, json={"kind": kind["code"]}
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["type"] == "archived_reference"
    assert stack.call("GET", f"/v1/campaigns/{webinar['id']}", north).json() == webinar


def test_created_and_restored_are_published_at_v2_with_the_code_and_names(stack: Stack) -> None:
    kind = _kind(stack, name_ru="Ярмарка", name_en="Trade fair")
    event = create_event(stack, kind=kind["code"])
    path = f"/v1/campaigns/{event['id']}"
    north = stack.user(NORTH)
    assert stack.call("DELETE", path, north, if_match=1).status_code == 204
    assert stack.call("POST", f"{path}/restore", north, if_match=2).status_code == 200
    created, deleted, restored = stack.events(CAMPAIGN_EVENTS, {event["id"]}, 3)
    assert (created.type, created.schema_version) == ("campaigns.campaign.created", 2)
    assert (deleted.type, deleted.schema_version) == ("campaigns.campaign.deleted", 1)
    assert (restored.type, restored.schema_version) == ("campaigns.campaign.restored", 2)
    for envelope in (created, restored):
        assert envelope.payload["kind"] == kind["code"]
        assert envelope.payload["kind_name_ru"] == "Ярмарка"
        assert envelope.payload["kind_name_en"] == "Trade fair"


def test_the_period_report_groups_events_by_kind(stack: Stack) -> None:
    fair = _kind(stack, name_ru="Ярмарка", name_en="Trade fair")
    year = 2100 + uuid.uuid4().int % 7000  # a period no earlier run of the suite has used
    north = stack.user(NORTH)

    def event(kind: str, day: int, statuses: list[str], actual: str) -> dict[str, Any]:
        start = f"{year}-09-{day:02d}T10:00:00+00:00"
        created = create_event(
            stack, kind=kind, planned_start=start, planned_end=start.replace("T10", "T18")
        )
        base = f"/v1/campaigns/{created['id']}"
        organizations = [stack.organization(NORTH) for _ in statuses]
        added = stack.call(
            "POST",
            f"{base}/participants",
            north,
            json={"participants": [{"organization_id": str(o)} for o in organizations]},
        )
        assert added.status_code == 200, added.text
        for participant, status in zip(added.json()["added"], statuses, strict=True):
            if status != "invited":
                answer = stack.call(
                    "PATCH",
                    f"{base}/participants/{participant['id']}",
                    north,
                    if_match=1,
                    json={"status": status},
                )
                assert answer.status_code == 200, answer.text
        lines = [{"category": "venue", "currency": "RUB", "actual": actual}]
        budget = stack.call("PUT", f"{base}/budget", north, if_match=1, json={"lines": lines})
        assert budget.status_code == 200, budget.text
        return created

    event(fair["code"], 3, ["attended", "invited"], "1000")
    event(fair["code"], 10, ["attended", "attended", "no_show"], "2000.01")
    event("seminar", 17, ["attended"], "500")
    period = {"from": f"{year}-09-01T00:00:00Z", "to": f"{year}-10-01T00:00:00Z"}
    report = stack.call("GET", "/v1/effectiveness", north, params=period)
    assert report.status_code == 200, report.text
    groups = {group["kind"]: group for group in report.json()["by_kind"]}
    assert list(groups) == sorted([fair["code"], "seminar"])
    mine = groups[fair["code"]]
    assert (mine["kind_name_ru"], mine["kind_name_en"], mine["events"]) == (
        "Ярмарка",
        "Trade fair",
        2,
    )
    assert (mine["participants"], mine["attendees"]) == (5, 3)
    # actual 1000 + 2000.01 = 3000.01; / 5 participants = 600.00; / 3 attendees = 1000.00
    assert mine["costs"] == [
        {
            "currency": "RUB",
            "planned": "0.00",
            "actual": "3000.01",
            "per_participant": "600.00",
            "per_attendee": "1000.00",
        }
    ]
    assert (groups["seminar"]["events"], groups["seminar"]["participants"]) == (1, 1)
    assert groups["seminar"]["kind_name_ru"] == "Семинар"
    assert {e["kind_name_ru"] for e in report.json()["events"]} == {"Ярмарка", "Семинар"}
    workbook = stack.call("GET", "/v1/effectiveness.xlsx", north, params=period)
    assert workbook.status_code == 200, workbook.text
    book = load_workbook(io.BytesIO(workbook.content))
    rows = list(book["По видам"].iter_rows(values_only=True))
    assert rows[0][:4] == ("Вид", "Код", "Мероприятий", "Участники")
    assert sorted(row[:5] for row in rows[1:]) == [
        ("Семинар", "seminar", 1, 1, 1),
        ("Ярмарка", fair["code"], 2, 5, 3),
    ]
    assert [row[-1] for row in book["Сводка"].iter_rows(values_only=True)][1:3] == [
        "Ярмарка",
        "Ярмарка",
    ]
