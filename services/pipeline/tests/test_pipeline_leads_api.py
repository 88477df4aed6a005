"""Leads over HTTP against the real service: intake and its ugly inputs, the same source id
twice (at once too), repeats within and after the window, the INN's organization suggested,
round-robin assignment, per-direction visibility and a connector confined to its direction,
conversion into a deal, rejection, and the events published."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import async_url
from clientele_shared.events.catalog import DEALS, LEADS
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    EmployeeUpdated,
    OrganizationCreated,
)
from clientele_shared.events.topics import PIPELINE, notification_requests
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import running
from pipeline_testkit import DEFAULT_STAGES, Stack
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

INN = "7707083893"
"""A company's INN with valid check digits."""


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    pipeline_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The service with a one-hour repeat window (a lead moved back in time leaves it)."""
    env = {**service_env, "LEAD_REPEAT_HOURS": "1"}
    logs = tmp_path_factory.mktemp("pipeline-leads")
    with running("pipeline", infra, env, pipeline_migrated, issuer, logs) as started:
        yield started


def _direction() -> str:
    """A direction of the test's own: its staff and turns are nobody else's."""
    return f"d{uuid.uuid4().hex[:10]}"


def _email() -> str:
    return f"client-{uuid.uuid4().hex[:8]}@example.com"


def _post(stack: Stack, direction: str, **body: Any) -> Any:
    return stack.call(
        "POST", "/v1/leads", stack.user([direction]), json={"source": "web_form", **body}
    )


def _employee(stack: Stack, direction: str, roles: list[str]) -> uuid.UUID:
    employee_id = uuid.uuid4()
    payload = EmployeeCreated(
        employee_id=employee_id,
        email=f"{employee_id.hex[:8]}@ourco.example",
        name="Мария Маркетова",
        roles=roles,
        directions=[direction],
    )
    stack.publish("employee", "directory.employee.created", payload, employee_id)
    stack.wait_until(
        "SELECT count(*) FROM employees WHERE employee_id = :id", 1, "the employee", id=employee_id
    )
    return employee_id


def _organization(stack: Stack, directions: list[str], inn: str, *, blocked: bool = False) -> Any:
    org_id = uuid.uuid4()
    payload = OrganizationCreated(
        organization_id=org_id,
        legal_name="ООО «Заявитель»",
        inn=inn,
        status="prospect",
        directions=directions,
        blocked=blocked,
    )
    stack.publish("organization", "directory.organization.created", payload, org_id)
    stack.wait_until(
        "SELECT count(*) FROM organizations WHERE organization_id = :id", 1, "org", id=org_id
    )
    return org_id


def test_intake_normalizes_suggests_the_organization_and_assigns(stack: Stack) -> None:
    direction = _direction()
    seller = stack.employee([direction])
    org = _organization(stack, [direction], INN)
    _organization(stack, ["elsewhere"], "7736207543")
    response = _post(
        stack,
        direction,
        contact_name="Анна Ёлкина",
        email=" Anna@EXAMPLE.Com ",
        phone="8 (912) 345-67-89",
        company_name="ООО «Ёлка» 🎄",
        inn=" 7707083893 ",
        message="Хотим 20 лицензий\nсрочно",
        details={"utm_source": "yandex", "utm_campaign": "зима", "page": "/pricing"},
    )
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == 'W/"1"'
    lead = response.json()
    assert response.headers["Location"] == f"/v1/leads/{lead['id']}"
    assert lead["email"] == "Anna@example.com"
    assert lead["phone"] == "+79123456789"
    assert lead["inn"] == INN
    assert lead["company_name"] == "ООО «Ёлка» 🎄"
    assert lead["direction"] == direction
    assert lead["suggested_organization_id"] == str(org)
    assert lead["status"] == "assigned"
    assert lead["assignee_employee_id"] == str(seller)
    events = stack.events(LEADS, {lead["id"]}, 2)
    assert [e.type for e in events] == ["pipeline.lead.received", "pipeline.lead.assigned"]
    assert events[0].payload["details"]["utm_campaign"] == "зима"
    assert events[0].directions == (direction,)
    assert events[1].payload["to_employee_id"] == str(seller)
    assert events[1].payload["automatic"] is True
    [notice] = stack.events(notification_requests(PIPELINE), {lead["id"]}, 1)
    assert notice.type == "pipeline.notification.requested"
    assert notice.payload["recipients"][0]["employee_id"] == str(seller)
    assert notice.payload["subject"] == "New lead: ООО «Ёлка» 🎄"
    other = _post(stack, direction, email=_email(), inn="7736207543")
    assert other.json()["suggested_organization_id"] is None  # another direction's
    audit = stack.call("GET", f"/v1/leads/{lead['id']}/audit", stack.user([direction])).json()
    assert [entry["action"] for entry in audit] == ["created"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "carrier_pigeon"}, "source"),
        ({"inn": "7707083894"}, "inn"),
        ({"inn": "12345"}, "inn"),
        ({"email": "not-an-address"}, "email"),
        ({"phone": "12"}, "phone"),
        ({"contact_name": "Ann\x00a"}, "contact_name"),
        ({"message": "a\x00b"}, "message"),
        ({"message": "я" * 10_001}, "message"),
        ({"details": {"utm": {"deep": {"er": "x"}}}}, "details"),
        ({"details": {"a b": "x"}}, "details"),
        ({"details": {f"k{i}": "v" for i in range(31)}}, "details"),
        ({"external_id": "x" * 201}, "external_id"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_ugly_input_is_a_422_and_writes_nothing(
    stack: Stack, body: dict[str, Any], field: str
) -> None:
    direction = _direction()
    before = stack.scalar("SELECT count(*) FROM leads")
    response = stack.call(
        "POST",
        "/v1/leads",
        stack.user([direction]),
        json={"source": "web_form", "email": _email(), **body},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text
    assert stack.scalar("SELECT count(*) FROM leads") == before


def test_a_lead_needs_a_way_back_and_a_writable_direction(stack: Stack) -> None:
    direction = _direction()
    empty = _post(stack, direction, contact_name="Аноним")
    assert empty.status_code == 422, empty.text
    foreign = stack.call(
        "POST",
        "/v1/leads",
        stack.user([direction]),
        json={"source": "email", "direction": _direction(), "email": _email()},
    )
    assert foreign.status_code == 403, foreign.text
    two = stack.call(
        "POST",
        "/v1/leads",
        stack.user([direction, _direction()]),
        json={"source": "email", "email": _email()},
    )
    assert two.status_code == 422
    assert "direction" in two.text
    reader = stack.call(
        "POST",
        "/v1/leads",
        stack.user([direction], roles=["security_officer"]),
        json={"source": "email", "email": _email()},
    )
    assert reader.status_code == 403, reader.text


def test_the_same_external_id_gives_the_first_lead_back_even_at_once(stack: Stack) -> None:
    direction = _direction()
    body = {"source": "email", "external_id": f"<{uuid.uuid4()}@mail>", "phone": "+79161234567"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda _: _post(stack, direction, **body, message="Здравствуйте"), range(4))
        )
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    lead_id = answers[0].json()["id"]
    assert stack.scalar("SELECT repeats FROM leads WHERE id = :id", id=uuid.UUID(lead_id)) == 0
    again = _post(stack, direction, **body)
    assert again.status_code == 200
    assert again.json()["id"] == lead_id
    # another direction's connector may number its messages alike: its own lead
    elsewhere = _post(stack, _direction(), **body)
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json()["id"] != lead_id
    assert (
        stack.scalar("SELECT count(*) FROM leads WHERE external_id = :e", e=body["external_id"])
        == 2
    )


def test_identical_requests_without_an_id_at_once_make_one_lead(stack: Stack) -> None:
    """Both requests are held where the first has inserted its lead (the direction's turn
    row is locked here): the second must wait for the first's commit and see its lead."""
    direction = _direction()
    stack.employee([direction])
    _post(stack, direction, email=_email())  # the direction's turn row exists
    email = _email()

    async def race() -> list[httpx.Response]:
        engine = create_async_engine(async_url(stack.database_url))
        try:
            async with engine.connect() as holder, engine.connect() as watcher:
                await holder.begin()
                await holder.execute(
                    text("SELECT 1 FROM lead_round_robin WHERE direction = :d FOR UPDATE"),
                    {"d": direction},
                )
                async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
                    body = {"source": "web_form", "email": email}
                    headers = stack.user([direction])
                    sent = [
                        asyncio.create_task(client.post("/v1/leads", json=body, headers=headers))
                        for _ in range(2)
                    ]
                    waiting = text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND (query LIKE '%lead_round_robin%' OR query LIKE '%advisory%')"
                    )
                    while (await watcher.execute(waiting)).scalar() < 2:
                        await watcher.rollback()  # pg_stat_activity: one snapshot a transaction
                        await asyncio.sleep(0.05)
                    await holder.rollback()
                    return list(await asyncio.gather(*sent))
        finally:
            await engine.dispose()

    answers = asyncio.run(race())
    assert sorted(a.status_code for a in answers) == [200, 201]
    assert len({a.json()["id"] for a in answers}) == 1
    assert stack.scalar("SELECT count(*) FROM leads WHERE email = :e", e=email) == 1
    assert stack.scalar("SELECT repeats FROM leads WHERE email = :e", e=email) == 1


def test_an_idempotency_key_replays_the_answer(stack: Stack) -> None:
    direction = _direction()
    headers = {**stack.user([direction]), "Idempotency-Key": uuid.uuid4().hex}
    body = {"source": "manual", "email": _email()}
    first = stack.call("POST", "/v1/leads", headers, json=body)
    second = stack.call("POST", "/v1/leads", headers, json=body)
    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert first.json()["id"] == second.json()["id"]
    assert stack.scalar("SELECT repeats FROM leads WHERE email = :e", e=body["email"]) == 0


def test_repeats_within_the_window_and_a_new_lead_after(stack: Stack) -> None:
    direction = _direction()
    email = _email()
    first = _post(stack, direction, email=email, message="Первое")
    assert first.status_code == 201
    lead_id = first.json()["id"]
    repeat = _post(stack, direction, email=email.upper().replace("EXAMPLE.COM", "example.com"))
    assert repeat.status_code == 201  # another local part's case: another address
    by_phone = _post(stack, direction, email=email, phone="+7 912 000-11-22", message="Второе")
    assert by_phone.status_code == 200, by_phone.text
    repeated = by_phone.json()
    assert repeated["id"] == lead_id
    assert repeated["repeats"] == 1
    assert repeated["last_message"] == "Второе"
    assert repeated["message"] == "Первое"
    assert repeated["phone"] == "+79120001122"  # learnt from the repeat
    assert repeated["version"] == 2
    mail_id = f"<{uuid.uuid4()}@mail>"
    mailed = _post(stack, direction, email=email, source="email", external_id=mail_id)
    assert mailed.json()["repeats"] == 2
    again = _post(stack, direction, email=email, source="email", external_id=mail_id)
    assert again.status_code == 200
    assert again.json()["repeats"] == 2  # the repeat's own id, sent again: no new repeat
    phone_only = _post(stack, direction, phone="89120001122", message="Третье")
    assert phone_only.json()["id"] == lead_id
    assert phone_only.json()["repeats"] == 3
    elsewhere = _post(stack, _direction(), email=email)
    assert elsewhere.status_code == 201  # another direction's request is its own lead
    audit = stack.call("GET", f"/v1/leads/{lead_id}/audit", stack.user([direction])).json()
    assert [entry["action"] for entry in audit] == ["created", *["repeated"] * 3]
    assert audit[1]["note"] == "web_form: Второе"
    events = stack.events(LEADS, {lead_id}, 4)
    received = [e.payload["repeats"] for e in events if e.type == "pipeline.lead.received"]
    assert received == [0, 1, 2, 3]
    stack.execute(
        "UPDATE leads SET last_received_at = now() - interval '2 hours' WHERE id = :id",
        id=uuid.UUID(lead_id),
    )
    after = _post(stack, direction, email=email)
    assert after.status_code == 201
    assert after.json()["id"] != lead_id


def test_round_robin_over_three_and_none_for_other_roles(stack: Stack) -> None:
    direction = _direction()
    nobody = _post(stack, direction, email=_email())
    assert nobody.json()["status"] == "new"
    assert nobody.json()["assignee_employee_id"] is None
    _employee(stack, direction, ["marketer"])
    stack.employee([direction], active=False)
    still = _post(stack, direction, email=_email())
    assert still.json()["assignee_employee_id"] is None
    staff = sorted(str(stack.employee([direction])) for _ in range(2))
    staff = sorted([*staff, str(_employee(stack, direction, ["head_of_sales"]))])
    given = [
        _post(stack, direction, email=_email()).json()["assignee_employee_id"] for _ in range(6)
    ]
    assert sorted(given[:3]) == staff
    assert given[3:] == given[:3]
    first_page = stack.call(
        "GET", f"/v1/leads?direction={direction}&limit=4", stack.user([direction])
    ).json()
    next_page = stack.call(
        "GET",
        "/v1/leads",
        stack.user([direction]),
        params={"direction": direction, "before": first_page[-1]["created_at"]},
    ).json()
    assert len(first_page) == 4
    assert len(next_page) == 4
    assert {lead["id"] for lead in first_page}.isdisjoint(lead["id"] for lead in next_page)
    assert next_page[-1]["id"] == nobody.json()["id"]
    unassigned = stack.call(
        "GET", f"/v1/leads?unassigned=true&direction={direction}", stack.user([direction])
    ).json()
    assert [lead["id"] for lead in unassigned] == [still.json()["id"], nobody.json()["id"]]
    mine = stack.call(
        "GET", f"/v1/leads?assignee_employee_id={given[0]}", stack.user([direction])
    ).json()
    assert len(mine) == 2
    demoted = uuid.UUID(given[0])
    change = {"roles": FieldChange(old=["sales"], new=["marketer"])}
    stack.publish(
        "employee",
        "directory.employee.updated",
        EmployeeUpdated(employee_id=demoted, version=2, changes=change),
        demoted,
    )
    stack.wait_until(
        "SELECT roles FROM employees WHERE employee_id = :id", ["marketer"], "roles", id=demoted
    )
    later = [
        _post(stack, direction, email=_email()).json()["assignee_employee_id"] for _ in range(4)
    ]
    assert str(demoted) not in later
    assert set(later) == set(staff) - {str(demoted)}


def test_leads_received_at_one_instant_page_by_id(stack: Stack) -> None:
    """The page cursor is the last lead's time and id: leads of one instant are neither
    skipped nor repeated across pages."""
    direction = _direction()
    ids = sorted(_post(stack, direction, email=_email()).json()["id"] for _ in range(3))
    stack.execute(
        "UPDATE leads SET created_at = '2026-12-07T10:00:00+00' WHERE directions = :d",
        d=[direction],
    )
    seen: list[str] = []
    params: dict[str, str] = {"direction": direction, "limit": "1"}
    while page := stack.call("GET", "/v1/leads", stack.user([direction]), params=params).json():
        seen += [lead["id"] for lead in page]
        params.update(before=page[-1]["created_at"], before_id=page[-1]["id"])
        assert len(seen) <= 3, seen
    assert seen == ids


def test_assignment_at_once_never_hands_a_turn_twice(stack: Stack) -> None:
    direction = _direction()
    staff = {str(stack.employee([direction])) for _ in range(3)}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: _post(stack, direction, email=_email()), range(6)))
    given = [a.json()["assignee_employee_id"] for a in answers]
    assert {employee: given.count(employee) for employee in staff} == dict.fromkeys(staff, 2)


def test_visibility_per_direction_and_a_confined_connector(stack: Stack) -> None:
    direction, other = _direction(), _direction()
    lead = _post(stack, direction, email=_email()).json()
    outsider = stack.user([other])
    assert stack.call("GET", f"/v1/leads/{lead['id']}", outsider).status_code == 404
    assert stack.call("GET", f"/v1/leads/{lead['id']}/audit", outsider).status_code == 404
    assert lead["id"] not in [x["id"] for x in stack.call("GET", "/v1/leads", outsider).json()]
    rejected = stack.call(
        "POST", f"/v1/leads/{lead['id']}/reject", outsider, if_match=1, json={"reason": "spam"}
    )
    assert rejected.status_code == 404
    admin = stack.user([], roles=["admin"])
    assert stack.call("GET", f"/v1/leads/{lead['id']}", admin).status_code == 200

    token = stack.issuer.mint(
        "site-form", directions=[direction], service="web-forms", confined=True, ttl_seconds=600
    )
    connector = {"Authorization": f"Bearer {token}"}
    taken = stack.call(
        "POST", "/v1/leads", connector, json={"source": "web_form", "email": _email()}
    )
    assert taken.status_code == 201, taken.text
    assert taken.json()["direction"] == direction
    outside = stack.call(
        "POST",
        "/v1/leads",
        connector,
        json={"source": "web_form", "direction": other, "email": _email()},
    )
    assert outside.status_code == 403
    # a connector hands leads in, nothing else: no reads (the leads' contacts), no other write
    for method, path, body in (
        ("GET", f"/v1/leads/{lead['id']}", None),
        ("GET", "/v1/leads", None),
        ("POST", f"/v1/leads/{lead['id']}/reject", {"reason": "spam"}),
        ("POST", "/v1/deals", {"title": "Сделка", "organization_id": str(uuid.uuid4())}),
        ("POST", "/v1/tasks", {"title": "Позвонить"}),
    ):
        answer = stack.call(method, path, connector, if_match=1, json=body)
        assert answer.status_code == 403, (method, path, answer.text)


def _pipeline(stack: Stack, direction: str) -> dict[str, Any]:
    body = {"name": "Продажи", "directions": [direction], "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user([direction]), json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_conversion_makes_a_deal_of_a_visible_live_client(stack: Stack) -> None:
    direction = _direction()
    seller = stack.employee([direction])
    pipeline = _pipeline(stack, direction)
    lead = _post(
        stack,
        direction,
        email=_email(),
        company_name="ООО «Покупатель»",
        details={"utm_source": "google", "page": "/"},
    ).json()
    user = stack.user([direction])
    path = f"/v1/leads/{lead['id']}/convert"
    unseen = stack.organization([_direction()])
    blocked = stack.organization([direction], blocked=True)
    deals_before = stack.scalar("SELECT count(*) FROM deals")
    assert stack.call("POST", path, user, json={"organization_id": str(unseen)}).status_code == 428
    for org, code in ((unseen, 422), (blocked, 409), (uuid.uuid4(), 422)):
        answer = stack.call("POST", path, user, if_match=1, json={"organization_id": str(org)})
        assert answer.status_code == code, answer.text
    no_currency = stack.call(
        "POST", path, user, if_match=1, json={"organization_id": str(unseen), "amount": "10"}
    )
    assert no_currency.status_code == 422
    assert stack.scalar("SELECT count(*) FROM deals") == deals_before
    client = stack.organization([direction])
    stale = stack.call("POST", path, user, if_match=7, json={"organization_id": str(client)})
    assert stale.status_code == 412
    answer = stack.call(
        "POST",
        path,
        user,
        if_match=1,
        json={"organization_id": str(client), "amount": "150000.00", "currency": "RUB"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["ETag"] == 'W/"2"'
    converted = answer.json()
    assert converted["status"] == "converted"
    deal = stack.call("GET", f"/v1/deals/{converted['deal_id']}", user).json()
    assert deal["pipeline_id"] == pipeline["id"]
    assert deal["organization_id"] == str(client)
    assert deal["title"] == "Заявка: ООО «Покупатель»"
    assert deal["responsible_employee_id"] == str(seller)
    assert deal["directions"] == [direction]
    source = {name: value for name, value in deal["source"].items() if value is not None}
    assert source == {"channel": "web_form", "utm_source": "google"}
    assert deal["amount"] == "150000.00"
    [created] = stack.events(DEALS, {deal["id"]}, 1)
    assert created.type == "pipeline.deal.created"
    events = stack.events(LEADS, {lead["id"]}, 3)
    assert events[-1].type == "pipeline.lead.converted"
    assert events[-1].payload["deal_id"] == deal["id"]
    again = stack.call("POST", path, user, if_match=2, json={"organization_id": str(client)})
    assert again.status_code == 409
    reject = stack.call(
        "POST", f"/v1/leads/{lead['id']}/reject", user, if_match=2, json={"reason": "spam"}
    )
    assert reject.status_code == 409


def test_rejection_and_reassignment(stack: Stack) -> None:
    direction = _direction()
    first, second = stack.employee([direction]), stack.employee([direction])
    lead = _post(stack, direction, email=_email()).json()
    user = stack.user([direction])
    path = f"/v1/leads/{lead['id']}"
    westerner = stack.employee([_direction()])
    inactive = stack.employee([direction], active=False)
    for employee in (westerner, inactive, uuid.uuid4()):
        answer = stack.call(
            "POST", f"{path}/assign", user, if_match=1, json={"employee_id": str(employee)}
        )
        assert answer.status_code == 422, answer.text
    target = second if lead["assignee_employee_id"] == str(first) else first
    moved = stack.call(
        "POST", f"{path}/assign", user, if_match=1, json={"employee_id": str(target)}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["assignee_employee_id"] == str(target)
    bad = stack.call(
        "POST", f"{path}/reject", user, if_match=2, json={"reason": "boring", "comment": "x"}
    )
    assert bad.status_code == 422
    rejected = stack.call(
        "POST",
        f"{path}/reject",
        user,
        if_match=2,
        json={"reason": "not_a_client", "comment": "Ищут работу, не покупают"},
    )
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["reject_reason"] == "not_a_client"
    events = stack.events(LEADS, {lead["id"]}, 4)
    assert [e.type for e in events] == [
        "pipeline.lead.received",
        "pipeline.lead.assigned",
        "pipeline.lead.assigned",
        "pipeline.lead.rejected",
    ]
    assert events[2].payload["from_employee_id"] == lead["assignee_employee_id"]
    assert events[2].payload["automatic"] is False
    assert events[3].payload["comment"] == "Ищут работу, не покупают"
    repeat = _post(stack, direction, email=lead["email"])
    assert repeat.status_code == 201  # a closed lead is never repeated
    audit = stack.call("GET", f"{path}/audit", user).json()
    assert [entry["action"] for entry in audit] == ["created", "assigned", "rejected"]
    listed = stack.call("GET", f"/v1/leads?status=rejected&direction={direction}", user).json()
    assert [x["id"] for x in listed] == [lead["id"]]
    assert stack.call("GET", "/v1/leads?status=open", user).status_code == 422
    assert stack.call("GET", "/v1/leads?source=fax", user).status_code == 422
