"""Public registration and check-in: matched registrants become participants, the others wait
for review; a honeypot and a per-address limit; the ticket code marks attendance once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
from campaigns_testkit import Stack, create_event
from clientele_shared.events.catalog import CAMPAIGN_EVENTS, PERSONS_STATE
from clientele_shared.events.schemas.directory import (
    EmploymentState,
    OrganizationBlocked,
    OrganizationCreated,
    PersonState,
)
from clientele_shared.events.schemas.notifications import NotificationRequested
from clientele_shared.events.topics import CAMPAIGNS, notification_requests
from clientele_testkit.stack import directory_envelope

NORTH = ["north"]


def _form(**extra: Any) -> dict[str, Any]:
    return {
        "last_name": "Сидоров",
        "first_name": "Сергей",
        "email": "sidorov@example.com",
        "organization_name": "ООО «Вектор»",
        **extra,
    }


def _register(stack: Stack, event_id: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        f"{stack.url}/v1/public/campaigns/{event_id}/registrations", json=_form(**extra), timeout=30
    )


def _organization_with_inn(stack: Stack, inn: str) -> uuid.UUID:
    org_id = uuid.uuid4()
    payload = OrganizationCreated(
        organization_id=org_id,
        legal_name="ООО «Вектор»",
        inn=inn,
        status="active",
        directions=NORTH,
    )
    stack.publish("organization", "directory.organization.created", payload, org_id)
    stack.wait_until(
        "SELECT count(*) FROM organizations WHERE organization_id = :id", 1, "org", id=org_id
    )
    return org_id


def _inn() -> str:
    return f"{uuid.uuid4().int % 10**10:010d}"


def test_registration_matches_or_waits_and_check_in_marks_attendance(stack: Stack) -> None:
    event = create_event(stack)
    closed = _register(stack, event["id"])
    assert closed.status_code == 404
    missing = _register(stack, str(uuid.uuid4()))
    assert missing.json()["detail"] == closed.json()["detail"], "an unknown event answers alike"
    north = stack.user(NORTH)
    opened = stack.call(
        "PATCH", f"/v1/campaigns/{event['id']}", north, if_match=1, json={"registration_open": True}
    )
    assert opened.status_code == 200, opened.text
    inn = _inn()
    org = _organization_with_inn(stack, inn)
    matched = _register(stack, event["id"], inn=inn)
    assert matched.status_code == 201, matched.text
    ticket = matched.json()
    assert ticket["status"] == "registered"
    unknown = _register(stack, event["id"], inn=_inn(), email="new@example.com").json()
    assert unknown["status"] == "review"
    listed = stack.call("GET", f"/v1/campaigns/{event['id']}/registrations", north).json()
    assert [r["status"] for r in listed] == ["registered", "review"]
    assert listed[0]["organization_id"] == str(org)
    participant_id = listed[0]["participant_id"]
    participant = stack.call(
        "GET", f"/v1/campaigns/{event['id']}/participants/{participant_id}", north
    ).json()
    assert participant["status"] == "registered"
    stored = stack.scalar(
        "SELECT count(*) FROM registrations WHERE code_hash = :c", c=ticket["code"]
    )
    assert stored == 0  # only the code's hash is kept

    check_in = f"/v1/campaigns/{event['id']}/check-in"
    assert stack.call("POST", check_in, north, json={"code": "A" * 16}).status_code == 404
    assert (
        stack.call(
            "POST", check_in, stack.user(["south"]), json={"code": ticket["code"]}
        ).status_code
        == 404
    )
    done = stack.call("POST", check_in, north, json={"code": ticket["code"]})
    assert done.status_code == 200, done.text
    assert done.json()["checked_in_by"] == "alice"
    again = stack.call("POST", check_in, north, json={"code": ticket["code"]})
    assert again.status_code == 409
    participant = stack.call(
        "GET", f"/v1/campaigns/{event['id']}/participants/{participant_id}", north
    ).json()
    assert participant["status"] == "attended"
    events = stack.events(CAMPAIGN_EVENTS, {event["id"]}, 4)
    attendance = [e for e in events if e.type == "campaigns.participant.status_changed"]
    assert attendance[-1].payload["status"] == "attended"
    review = stack.call("POST", check_in, north, json={"code": unknown["code"]})
    assert review.status_code == 200


def test_blocked_registrant_waits_for_review_and_bad_forms(stack: Stack) -> None:
    event = create_event(stack, registration_open=True)
    inn = _inn()
    org = _organization_with_inn(stack, inn)
    stack.publish(
        "organization",
        "directory.organization.blocked",
        OrganizationBlocked(
            organization_id=org, entry_id=uuid.uuid4(), basis="inn", reason="x", decided_by="s"
        ),
        org,
    )
    stack.wait_until(
        "SELECT blocked FROM organizations WHERE organization_id = :id", True, "b", id=org
    )
    blocked = _register(stack, event["id"], inn=inn, email="b@example.com").json()
    assert blocked["status"] == "review"
    assert (
        stack.call("GET", f"/v1/campaigns/{event['id']}/participants", stack.user(NORTH)).json()
        == []
    )
    for bad in [
        {"email": "not-an-email"},
        {"inn": "12345"},
        {"last_name": ""},
        {"organization_name": "x\u0000"},
        {"unexpected": 1},
    ]:
        response = _register(stack, event["id"], **bad)
        assert response.status_code == 422, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    before = stack.scalar(
        "SELECT count(*) FROM registrations WHERE campaign_id = :id", id=uuid.UUID(event["id"])
    )
    bot = _register(stack, event["id"], website="http://spam.example")
    assert bot.status_code == 201
    after = stack.scalar(
        "SELECT count(*) FROM registrations WHERE campaign_id = :id", id=uuid.UUID(event["id"])
    )
    assert after == before == 1


def test_registrations_limited_per_address_and_event(stack: Stack) -> None:
    event = create_event(stack, registration_open=True)
    answers = [_register(stack, event["id"], email=f"r{i}@example.com") for i in range(11)]
    assert [a.status_code for a in answers[:10]] == [201] * 10
    assert answers[10].status_code == 429
    assert int(answers[10].headers["Retry-After"]) >= 1
    assert answers[10].headers["content-type"] == "application/problem+json"
    other = create_event(stack, registration_open=True)
    assert _register(stack, other["id"]).status_code == 201


def test_registration_asks_the_notifier_for_one_confirmation(stack: Stack) -> None:
    event = create_event(stack, title="Форум дилеров", place="Казань")
    north = stack.user(NORTH)
    opened = stack.call(
        "PATCH", f"/v1/campaigns/{event['id']}", north, if_match=1, json={"registration_open": True}
    )
    assert opened.status_code == 200, opened.text
    first = _register(stack, event["id"], email="anna@example.com")
    assert first.status_code == 201, first.text
    ticket = first.json()
    again = _register(stack, event["id"], email="Anna@Example.com", first_name="Анна")
    assert again.status_code == 200, again.text  # the same address: the same registration
    assert again.json() == {**ticket, "code": None}  # the code is not given twice
    count = stack.scalar(
        "SELECT count(*) FROM registrations WHERE campaign_id = :id", id=uuid.UUID(event["id"])
    )
    assert count == 1
    bot = _register(stack, event["id"], website="http://spam.example", email="bot@example.com")
    assert bot.status_code == 201
    topic = notification_requests(CAMPAIGNS)
    keys = {ticket["registration_id"], bot.json()["registration_id"]}
    requests = stack.events(topic, keys, wanted=2, timeout_ms=5_000)
    assert [r.aggregate_id for r in requests] == [ticket["registration_id"]]  # none for the bot
    request = requests[0]
    assert request.type == "campaigns.notification.requested"
    assert request.directions == ("north",)
    payload = NotificationRequested.model_validate(request.payload)
    assert payload.idempotency_key == f"registration:{ticket['registration_id']}:confirmation"
    assert payload.channel == "email"
    assert [(r.email, r.name) for r in payload.recipients] == [
        ("anna@example.com", "Сергей Сидоров")
    ]
    assert payload.subject == "Регистрация: Форум дилеров"
    assert payload.text is not None
    assert f"Код билета: {ticket['code']}" in payload.text
    assert "Где: Казань" in payload.text
    assert "10.03.2026 07:00 UTC" in payload.text  # 10:00 in Moscow
    assert payload.data["ticket_code"] == ticket["code"]


def test_concurrent_registrations_of_one_address_make_one(stack: Stack) -> None:
    event = create_event(stack, registration_open=True)
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: _register(stack, event["id"], email="same@example.com"), range(6))
        )
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201]
    assert len({a.json()["registration_id"] for a in answers}) == 1
    count = stack.scalar(
        "SELECT count(*) FROM registrations WHERE campaign_id = :id", id=uuid.UUID(event["id"])
    )
    assert count == 1


def test_a_registrant_is_matched_to_a_known_person_by_email_or_phone(stack: Stack) -> None:
    event = create_event(stack)
    north = stack.user(NORTH)
    opened = stack.call(
        "PATCH", f"/v1/campaigns/{event['id']}", north, if_match=1, json={"registration_open": True}
    )
    assert opened.status_code == 200, opened.text
    org = _organization_with_inn(stack, _inn())
    tag = uuid.uuid4().hex[:8]
    by_email = _known(stack, org, emails=[f"Petrov.{tag}@Example.com"])
    by_phone = _known(stack, org, phones=[{"number": "+74951234567", "kind": "work"}], tag=tag)
    twins = [_known(stack, org, emails=[f"twin.{tag}@example.com"]) for _ in range(2)]

    first = _register(stack, event["id"], email=f"petrov.{tag}@example.com")
    second = _register(
        stack, event["id"], email=f"other.{tag}@example.com", phone="8 (495) 123-45-67"
    )
    shared = _register(stack, event["id"], email=f"twin.{tag}@example.com")
    for answer in (first, second, shared):
        assert answer.status_code == 201, answer.text
    listed = {
        r["email"]: r
        for r in stack.call("GET", f"/v1/campaigns/{event['id']}/registrations", north).json()
    }
    matched = listed[f"petrov.{tag}@example.com"]
    assert (matched["status"], matched["person_id"], matched["organization_id"]) == (
        "registered",
        str(by_email),
        str(org),
    )
    participant = stack.call(
        "GET", f"/v1/campaigns/{event['id']}/participants/{matched['participant_id']}", north
    ).json()
    assert participant["person_id"] == str(by_email)
    phoned = listed[f"other.{tag}@example.com"]
    assert (phoned["person_id"], phoned["phone"]) == (str(by_phone), "+74951234567")
    assert listed[f"twin.{tag}@example.com"]["person_id"] is None  # two match: nobody
    assert listed[f"twin.{tag}@example.com"]["status"] == "review"
    assert twins


def _known(
    stack: Stack,
    organization: uuid.UUID,
    *,
    emails: list[str] | None = None,
    phones: list[dict[str, str]] | None = None,
    tag: str = "",
) -> uuid.UUID:
    """A person of the organization as the directory's persons state topic announces it."""
    person_id = uuid.uuid4()
    state = PersonState(
        person_id=person_id,
        version=1,
        revision=1,
        first_name="Пётр",
        last_name=f"Петров {tag}",
        emails=emails or [],
        phones=phones or [],
        directions=NORTH,
        employments=[
            EmploymentState(employment_id=uuid.uuid4(), organization_id=organization, version=1)
        ],
    )
    stack.send(PERSONS_STATE, [directory_envelope("directory.person.state", state, person_id)])
    stack.wait_until(
        "SELECT count(*) FROM mailing_contacts c JOIN persons p USING (person_id) "
        "WHERE person_id = :p",
        1,
        "the person",
        p=person_id,
    )
    return person_id
