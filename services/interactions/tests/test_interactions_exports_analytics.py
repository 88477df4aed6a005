"""The address book (vCard), the meetings feed (iCalendar) and the analytics, by direction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import icalendar
import pytest
import vobject
from clientele_shared.events.catalog import PERSONS
from clientele_shared.events.schemas.directory import EmploymentChanged, PersonCreated
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish

pytestmark = pytest.mark.integration

FEB = "2026-02-01T00:00:00Z"
MAR = "2026-03-01T00:00:00Z"


class World:
    """Two clients in this test's direction, one in another, their people and contacts."""

    def __init__(self, stack: Stack, direction: str) -> None:
        self.stack = stack
        self.direction = direction
        self.other = f"{direction}-x"
        self.mine = bearer(stack.issuer, "alice", directions=[direction])
        self.theirs = bearer(stack.issuer, "bob", directions=[self.other])
        self.e1 = stack.employee([direction, self.other])
        self.e2 = stack.employee([direction])
        self.alpha = stack.client([direction], legal_name="ООО «Альфа»")
        self.beta = stack.client([direction], legal_name="ООО «Бета»")
        self.gamma = stack.client([self.other], legal_name="ООО «Гамма»")
        self.maria, self.petr, self.hidden = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        publish(
            stack.bootstrap,
            PERSONS,
            *self._person(self.maria, "Иванова", [], self.alpha, "Финансовый директор"),
            *self._person(self.petr, "Петров", [direction], None, None),
            *self._person(self.hidden, "Скрытый", [self.other], self.gamma, "CEO"),
        )
        wait_for(
            lambda: (
                bool(self._summary(self.gamma, stack.admin)["people"])
                and bool(self._summary(self.alpha, stack.admin)["people"])
            ),
            60,
            "the persons to arrive",
        )
        for org, kind, result, employee, day, headers in [
            (self.alpha, "call", "reached", self.e1, 3, self.mine),
            (self.alpha, "call", "no_answer", self.e1, 4, self.mine),
            (self.alpha, "meeting", "held", self.e1, 10, self.mine),
            (self.beta, "email", None, self.e2, 12, self.mine),
            *[(self.gamma, "call", "reached", self.e1, 5, self.theirs) for _ in range(3)],
        ]:
            self.log(
                org,
                headers,
                kind=kind,
                result=result,
                responsible_employee_id=str(employee),
                occurred_at=f"2026-02-{day:02d}T09:00:00+03:00",
            )
        due = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
        self.meeting = self.log(
            self.alpha,
            self.mine,
            kind="meeting",
            status="planned",
            due_at=due.isoformat(),
            responsible_employee_id=str(self.e1),
            duration_seconds=5400,
            subject="Подписание",
        )
        self.log(
            self.gamma,
            self.theirs,
            kind="meeting",
            status="planned",
            due_at=due.isoformat(),
            responsible_employee_id=str(self.e1),
            subject="Hidden meeting",
        )
        self.log(
            self.beta,
            self.mine,
            kind="call",
            status="planned",
            due_at=(datetime.now(UTC) - timedelta(hours=2)).isoformat(),
            responsible_employee_id=str(self.e2),
        )

    def _person(
        self,
        person: uuid.UUID,
        last: str,
        directions: list[str],
        org: uuid.UUID | None,
        position: str | None,
    ) -> list[Any]:
        events = [
            directory_envelope(
                "directory.person.created",
                PersonCreated(
                    person_id=person,
                    last_name=last,
                    first_name="Тест",
                    emails=[f"{person.hex[:8]}@example.ru"],
                    phones=[{"number": "+74951234567", "kind": "work", "extension": None}],
                    directions=directions,
                ),
                person,
                directions,
            )
        ]
        if org is not None:
            events.append(
                directory_envelope(
                    "directory.employment.changed",
                    EmploymentChanged(
                        employment_id=uuid.uuid4(),
                        person_id=person,
                        organization_id=org,
                        change="created",
                        version=1,
                        position=position,
                    ),
                    person,
                    directions,
                )
            )
        return events

    def _summary(self, org: uuid.UUID, headers: dict[str, str]) -> dict[str, Any]:
        response = httpx.get(f"{self.stack.url}/v1/clients/{org}/summary", headers=headers)
        return dict(response.json())

    def log(self, org: uuid.UUID, headers: dict[str, str], **fields: Any) -> str:
        body = {"organization_id": str(org), "subject": "Contact", **fields}
        body = {k: v for k, v in body.items() if v is not None}
        response = httpx.post(f"{self.stack.url}/v1/interactions", json=body, headers=headers)
        assert response.status_code == 201, response.text
        return str(response.json()["interaction"]["id"])

    def get(self, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
        return httpx.get(f"{self.stack.url}{path}", headers=headers, params=params)


@pytest.fixture(scope="module")
def world(stack: Stack) -> World:
    return World(stack, f"d-{uuid.uuid4().hex[:10]}")


def test_vcard_export_of_visible_persons(world: World) -> None:
    response = world.get("/v1/persons.vcf", world.mine)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/vcard")
    cards = list(vobject.readComponents(response.text))
    by_id = {card.uid.value: card for card in cards}
    assert str(world.hidden) not in by_id, "another direction's person is not exported"
    maria, petr = by_id[str(world.maria)], by_id[str(world.petr)]
    assert maria.fn.value == "Иванова Тест"
    assert maria.org.value == ["ООО «Альфа»"]
    assert maria.title.value == "Финансовый директор"
    assert maria.email.value == f"{world.maria.hex[:8]}@example.ru"
    assert petr.n.value.family == "Петров"
    assert "org" not in petr.contents, "seen through his own direction, no position"

    v4 = world.get("/v1/persons.vcf", world.mine, version="4.0")
    assert "VERSION:4.0" in v4.text
    assert f"UID:urn:uuid:{world.maria}" in v4.text
    one_client = world.get("/v1/persons.vcf", world.mine, organization_id=str(world.alpha))
    assert [c.uid.value for c in vobject.readComponents(one_client.text)] == [str(world.maria)]
    theirs = world.get("/v1/persons.vcf", world.theirs).text
    assert str(world.hidden) in theirs
    assert str(world.maria) not in theirs
    assert str(world.petr) not in theirs
    bad = world.get("/v1/persons.vcf", world.mine, version="2.1")
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{world.stack.url}/v1/persons.vcf").status_code == 401


def test_meetings_feed_per_employee(world: World) -> None:
    response = world.get(f"/v1/employees/{world.e1}/meetings.ics", world.mine)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    calendar = icalendar.Calendar.from_ical(response.content)
    events = list(calendar.walk("VEVENT"))
    assert [str(e["uid"]) for e in events] == [f"{world.meeting}@clientele"]
    event = events[0]
    assert str(event["summary"]) == "Подписание — ООО «Альфа»"
    assert event.decoded("dtend") - event.decoded("dtstart") == timedelta(minutes=90)
    theirs = icalendar.Calendar.from_ical(
        world.get(f"/v1/employees/{world.e1}/meetings.ics", world.theirs).content
    )
    assert [str(e["summary"]) for e in theirs.walk("VEVENT")] == ["Hidden meeting — ООО «Гамма»"]
    nobody = world.get(f"/v1/employees/{uuid.uuid4()}/meetings.ics", world.mine)
    assert list(icalendar.Calendar.from_ical(nobody.content).walk("VEVENT")) == []
    assert world.get("/v1/employees/not-a-uuid/meetings.ics", world.mine).status_code == 422


def test_contacts_per_employee_period_kind_and_result(world: World) -> None:
    rows = world.get(
        "/v1/analytics/contacts", world.mine, **{"from": FEB, "to": MAR, "tz": "Europe/Moscow"}
    ).json()
    moscow_february = datetime.fromisoformat("2026-02-01T00:00:00+03:00")
    assert {datetime.fromisoformat(r["period_start"]) for r in rows} == {moscow_february}
    assert sorted(
        (r["employee_id"], r["kind"], r["result"] or "", r["contacts"]) for r in rows
    ) == sorted(
        [
            (str(world.e1), "call", "no_answer", 1),
            (str(world.e1), "call", "reached", 1),
            (str(world.e1), "meeting", "held", 1),
            (str(world.e2), "email", "", 1),
        ]
    )
    assert sum(r["contacts"] for r in rows) == 4, "another direction's contacts are not counted"
    assert len(rows) == 4
    theirs = world.get("/v1/analytics/contacts", world.theirs, **{"from": FEB, "to": MAR}).json()
    assert [(r["kind"], r["contacts"]) for r in theirs] == [("call", 3)]


def test_totals_and_contacts_per_organization(world: World) -> None:
    totals = world.get("/v1/analytics/totals", world.mine, **{"from": FEB, "to": MAR}).json()
    assert totals == {
        "contacts": 4,
        "organizations": 2,
        "by_kind": {"call": 2, "meeting": 1, "email": 1},
        "by_direction": {"out": 4},
    }
    per_org = world.get(
        "/v1/analytics/organizations", world.mine, **{"from": FEB, "to": MAR}
    ).json()
    assert [(o["legal_name"], o["contacts"]) for o in per_org] == [
        ("ООО «Альфа»", 3),
        ("ООО «Бета»", 1),
    ]


def test_overdue_now_and_meetings_workload(world: World) -> None:
    overdue = world.get("/v1/analytics/overdue", world.mine).json()
    assert overdue["now"] == 1
    assert overdue["by_employee"] == [{"employee_id": str(world.e2), "count": 1}]
    until = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    workload = world.get("/v1/analytics/meetings", world.mine, **{"from": FEB, "to": until}).json()
    assert workload == [
        {"employee_id": str(world.e1), "planned": 1, "held": 1, "cancelled": 0, "open": 1}
    ]
    assert world.get("/v1/analytics/overdue", world.theirs).json()["now"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"from": MAR, "to": FEB},
        {"from": FEB, "to": MAR, "tz": "Mars/Olympus"},
        {"from": "2026-02-01T00:00:00", "to": MAR},
        {"from": "2020-01-01T00:00:00Z", "to": MAR},
        {"to": MAR},
        {"from": FEB, "to": MAR, "period": "decade"},
    ],
    ids=["reversed", "unknown-zone", "naive", "too-long", "missing-from", "unknown-period"],
)
def test_analytics_bad_input_is_a_problem(world: World, params: dict[str, str]) -> None:
    response = world.get("/v1/analytics/contacts", world.mine, **params)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
