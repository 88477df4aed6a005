"""What the directory does to clients and persons reaches the contact log: merges re-point the
history to the survivor, deletion hides a client (history kept), the unwanted register blocks
new business. Events are published on Kafka as the directory's relay would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clientele_shared.events.catalog import (
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    PERSONS,
    FieldChange,
    notification_requests,
)
from clientele_shared.events.schemas.directory import (
    EmploymentChanged,
    MovedEmployment,
    OrganizationBlocked,
    OrganizationDeleted,
    OrganizationMerged,
    OrganizationRestored,
    OrganizationState,
    OrganizationUnblocked,
    OrganizationUpdated,
    PersonBlocked,
    PersonCreated,
    PersonDeleted,
    PersonMerged,
)
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, events_for, publish

pytestmark = pytest.mark.integration


def _log(stack: Stack, headers: dict[str, str], org: uuid.UUID, **fields: Any) -> httpx.Response:
    body = {"organization_id": str(org), "kind": "call", "subject": "Call", **fields}
    return httpx.post(f"{stack.url}/v1/interactions", json=body, headers=headers)


def _plan(
    stack: Stack, headers: dict[str, str], org: uuid.UUID, employee: uuid.UUID, **fields: Any
) -> httpx.Response:
    due = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    return _log(
        stack,
        headers,
        org,
        kind="meeting",
        status="planned",
        due_at=due,
        responsible_employee_id=str(employee),
        **fields,
    )


def _org_event(stack: Stack, event_type: str, payload: Any, key: uuid.UUID, d: str) -> None:
    publish(stack.bootstrap, ORGANIZATIONS, directory_envelope(event_type, payload, key, [d]))


def _person(
    stack: Stack,
    org: uuid.UUID,
    direction: str,
    email: str,
    employment: uuid.UUID | None = None,
) -> uuid.UUID:
    person = uuid.uuid4()
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.created",
            PersonCreated(
                person_id=person, last_name="Петров", emails=[email], directions=[direction]
            ),
            person,
            [direction],
        ),
        directory_envelope(
            "directory.employment.changed",
            EmploymentChanged(
                employment_id=employment or uuid.uuid4(),
                person_id=person,
                organization_id=org,
                change="created",
                version=1,
                position="Директор",
            ),
            person,
            [direction],
        ),
    )
    wait_for(
        lambda: any(
            p["person_id"] == str(person)
            for p in httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=stack.admin).json()[
                "people"
            ]
        ),
        60,
        "the person at the client",
    )
    return person


def _eml(message_id: str) -> bytes:
    return (
        "From: Client <boss@client.example>\r\nTo: alice@ourco.example\r\n"
        f"Subject: Offer\r\nMessage-ID: <{message_id}>\r\n"
        "Date: Mon, 2 Mar 2026 09:00:00 +0000\r\n\r\nHello\r\n"
    ).encode()


def test_a_merge_moves_the_history_to_the_survivor(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    survivor = stack.client([direction], legal_name="ООО «Выживший»")
    merged = stack.client([direction], legal_name="ООО «Дубль»")
    sales = bearer(stack.issuer, "alice", directions=[direction])
    done = _log(stack, sales, merged, subject="Old call").json()["interaction"]
    planned = _plan(stack, sales, merged, employee, subject="Meeting at the double").json()[
        "interaction"
    ]
    person = _person(stack, merged, direction, f"p-{uuid.uuid4().hex[:8]}@client.example")
    message_id = f"{uuid.uuid4()}@client.example"
    for org in (survivor, merged):  # the same message captured for both before the merge
        captured = httpx.post(
            f"{stack.url}/v1/interactions/email",
            files={"file": ("offer.eml", _eml(message_id), "message/rfc822")},
            data={"organization_id": str(org)},
            headers=sales,
        )
        assert captured.status_code == 201, captured.text
    cached = httpx.get(f"{stack.url}/v1/clients/{survivor}/summary", headers=sales)
    assert cached.json()["people"] == []

    _org_event(
        stack,
        "directory.organization.deleted",
        OrganizationDeleted(organization_id=merged, version=2),
        merged,
        direction,
    )
    _org_event(
        stack,
        "directory.organization.merged",
        OrganizationMerged(
            survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
        ),
        survivor,
        direction,
    )
    wait_for(
        lambda: (
            httpx.get(f"{stack.url}/v1/interactions/{done['id']}", headers=sales)
            .json()
            .get("organization_id")
            == str(survivor)
        ),
        60,
        "the merged client's history to move",
    )

    # the merged id answers the survivor's card and summary, which shows the moved history
    card = httpx.get(f"{stack.url}/v1/clients/{merged}", headers=sales)
    assert card.status_code == 200
    assert card.json()["organization_id"] == str(survivor)
    assert card.headers["content-location"] == f"/v1/clients/{survivor}"
    summary = httpx.get(f"{stack.url}/v1/clients/{merged}/summary", headers=sales)
    assert summary.status_code == 200
    assert summary.headers["content-location"] == f"/v1/clients/{survivor}/summary"
    body = summary.json()
    assert body["card"]["legal_name"] == "ООО «Выживший»"
    assert [p["person_id"] for p in body["people"]] == [str(person)]
    assert {i["subject"] for i in body["last_interactions"]} >= {"Old call", "Offer"}
    assert [i["id"] for i in body["next_planned"]] == [planned["id"]]
    fresh = httpx.get(f"{stack.url}/v1/clients/{survivor}/summary", headers=sales)
    assert fresh.json()["people"] == body["people"]  # the survivor's cached body was replaced
    stranger = bearer(stack.issuer, "bob", directions=["elsewhere"])
    assert httpx.get(f"{stack.url}/v1/clients/{merged}", headers=stranger).status_code == 404
    assert (
        httpx.get(f"{stack.url}/v1/clients/{merged}/summary", headers=stranger).status_code == 404
    )

    # each moved interaction has a new version and an audit entry
    moved = httpx.get(f"{stack.url}/v1/interactions/{done['id']}", headers=sales)
    assert moved.headers["etag"] == 'W/"2"'
    trail = httpx.get(f"{stack.url}/v1/interactions/{done['id']}/audit", headers=sales).json()
    assert trail[-1]["action"] == "client_merged"
    assert trail[-1]["changes"]["organization_id"] == {"old": str(merged), "new": str(survivor)}
    listed = httpx.get(
        f"{stack.url}/v1/interactions", params={"organization_id": str(merged)}, headers=sales
    ).json()
    assert len(listed) == 4  # old call, planned meeting, the message twice (kept as records)
    assert {i["organization_id"] for i in listed} == {str(survivor)}

    # the planned contact's reminder is scheduled again, now about the survivor
    reminders = events_for(
        stack.bootstrap, notification_requests("interactions"), {planned["id"]}, 3, 3000
    )
    assert reminders[-1].type == "interactions.reminder.scheduled"
    assert reminders[-1].payload["payload"]["organization_id"] == str(survivor)

    # a position at the merged organization that arrives late lands at the survivor
    late = _person(stack, merged, direction, f"late-{uuid.uuid4().hex[:8]}@client.example")
    survivor_people = httpx.get(f"{stack.url}/v1/clients/{survivor}/summary", headers=sales)
    assert str(late) in {p["person_id"] for p in survivor_people.json()["people"]}

    # writing with the merged id writes about the survivor; the message is known there
    again = _log(stack, sales, merged, subject="After the merge")
    assert again.status_code == 201, again.text
    assert again.json()["interaction"]["organization_id"] == str(survivor)
    duplicate = httpx.post(
        f"{stack.url}/v1/interactions/email",
        files={"file": ("offer.eml", _eml(message_id), "message/rfc822")},
        data={"organization_id": str(merged)},
        headers=sales,
    )
    assert duplicate.status_code == 409


def test_a_deleted_client_is_hidden_until_restored(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction], legal_name="ООО «Удаляемое»")
    sales = bearer(stack.issuer, "alice", directions=[direction])
    done = _log(stack, sales, org, subject="Before deletion").json()["interaction"]
    planned = _plan(stack, sales, org, employee).json()["interaction"]
    _person(stack, org, direction, f"d-{uuid.uuid4().hex[:8]}@client.example")
    window = {
        "from": (datetime.now(UTC) - timedelta(days=1)).isoformat(),
        "to": (datetime.now(UTC) + timedelta(days=1)).isoformat(),
    }

    def visible() -> dict[str, Any]:
        vcards = httpx.get(
            f"{stack.url}/v1/persons.vcf", params={"organization_id": str(org)}, headers=sales
        )
        return {
            "card": httpx.get(f"{stack.url}/v1/clients/{org}", headers=sales).status_code,
            "summary": httpx.get(
                f"{stack.url}/v1/clients/{org}/summary", headers=sales
            ).status_code,
            "interaction": httpx.get(
                f"{stack.url}/v1/interactions/{done['id']}", headers=sales
            ).status_code,
            "listed": len(
                httpx.get(
                    f"{stack.url}/v1/interactions",
                    params={"responsible_employee_id": str(employee)},
                    headers=sales,
                ).json()
            ),
            "totals": httpx.get(
                f"{stack.url}/v1/analytics/totals", params=window, headers=sales
            ).json()["contacts"],
            "vcards": vcards.text.count("BEGIN:VCARD"),
            "log": _log(stack, sales, org).status_code,
        }

    before = visible()
    assert before == {
        "card": 200,
        "summary": 200,
        "interaction": 200,
        "listed": 1,
        "totals": 1,
        "vcards": 1,
        "log": 201,
    }
    _org_event(
        stack,
        "directory.organization.deleted",
        OrganizationDeleted(organization_id=org, version=2),
        org,
        direction,
    )
    wait_for(
        lambda: httpx.get(f"{stack.url}/v1/clients/{org}", headers=sales).status_code == 404,
        60,
        "the deletion to arrive",
    )
    assert visible() == {
        "card": 404,
        "summary": 404,
        "interaction": 404,
        "listed": 0,
        "totals": 0,
        "vcards": 0,
        "log": 404,
    }
    cancelled = events_for(
        stack.bootstrap, notification_requests("interactions"), {planned["id"]}, 2
    )
    assert cancelled[-1].type == "interactions.reminder.cancelled"

    _org_event(
        stack,
        "directory.organization.restored",
        OrganizationRestored(organization_id=org, version=3),
        org,
        direction,
    )
    wait_for(
        lambda: httpx.get(f"{stack.url}/v1/clients/{org}", headers=sales).status_code == 200,
        60,
        "the restoration to arrive",
    )
    after = visible()
    assert after["interaction"] == after["summary"] == 200
    assert after["totals"] == 2  # the history is intact
    rescheduled = events_for(
        stack.bootstrap, notification_requests("interactions"), {planned["id"]}, 3
    )
    assert rescheduled[-1].type == "interactions.reminder.scheduled"


def test_blocked_counterparties_take_no_new_business(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    person = _person(stack, org, direction, f"b-{uuid.uuid4().hex[:8]}@client.example")
    existing = _plan(stack, sales, org, employee, person_ids=[str(person)]).json()["interaction"]
    _org_event(
        stack,
        "directory.organization.blocked",
        OrganizationBlocked(
            organization_id=org,
            entry_id=uuid.uuid4(),
            basis="inn",
            reason="fraud",
            decided_by="security",
        ),
        org,
        direction,
    )
    wait_for(
        lambda: httpx.get(f"{stack.url}/v1/clients/{org}", headers=sales).json()["blocked"],
        60,
        "the block to arrive",
    )
    summary = httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=sales).json()
    assert summary["card"]["blocked"] is True
    listed = httpx.get(
        f"{stack.url}/v1/interactions", params={"organization_id": str(org)}, headers=sales
    ).json()
    assert [i["client_blocked"] for i in listed] == [True]

    refused = _plan(stack, sales, org, employee)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/counterparty-blocked")
    assert refused.json()["organization_id"] == str(org)
    assert _log(stack, sales, org, direction="out").status_code == 409
    inbound = _log(stack, sales, org, direction="in", subject="They called us")
    assert inbound.status_code == 201, inbound.text
    follow_up = _log(
        stack,
        sales,
        org,
        direction="in",
        next={"due_at": (datetime.now(UTC) + timedelta(days=1)).isoformat()},
        responsible_employee_id=str(employee),
    )
    assert follow_up.status_code == 409  # the next contact would be new business
    # what was planned before the block may still be completed (a record of what happened)
    completed = httpx.post(
        f"{stack.url}/v1/interactions/{existing['id']}/complete",
        json={"result": "held"},  # would suggest a follow-up in 7 days
        headers={**sales, "If-Match": 'W/"1"'},
    )
    assert completed.status_code == 200, completed.text
    assert completed.json()["suggested_next"] is None
    assert (
        len(
            httpx.get(
                f"{stack.url}/v1/interactions", params={"organization_id": str(org)}, headers=sales
            ).json()
        )
        == 2
    )  # nothing refused was written

    _org_event(
        stack,
        "directory.organization.unblocked",
        OrganizationUnblocked(organization_id=org),
        org,
        direction,
    )
    wait_for(
        lambda: not httpx.get(f"{stack.url}/v1/clients/{org}", headers=sales).json()["blocked"],
        60,
        "the unblock to arrive",
    )
    assert _plan(stack, sales, org, employee).status_code == 201


def test_blocked_and_deleted_persons(stack: Stack, direction: str, employee: uuid.UUID) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    blocked = _person(stack, org, direction, f"x-{uuid.uuid4().hex[:8]}@client.example")
    gone = _person(stack, org, direction, f"y-{uuid.uuid4().hex[:8]}@client.example")
    logged = _log(stack, sales, org, direction="in", person_ids=[str(blocked)]).json()
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.blocked",
            PersonBlocked(
                person_id=blocked,
                entry_id=uuid.uuid4(),
                basis="person",
                reason="r",
                decided_by="security",
            ),
            blocked,
            [direction],
        ),
        directory_envelope(
            "directory.person.deleted", PersonDeleted(person_id=gone, version=2), gone, [direction]
        ),
    )

    def people() -> dict[str, bool]:
        summary = httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=sales).json()
        return {p["person_id"]: p["blocked"] for p in summary["people"]}

    wait_for(lambda: people() == {str(blocked): True}, 60, "the person events to arrive")
    shown = httpx.get(
        f"{stack.url}/v1/interactions/{logged['interaction']['id']}", headers=sales
    ).json()
    assert shown["blocked_person_ids"] == [str(blocked)]
    assert shown["client_blocked"] is False

    refused = _plan(stack, sales, org, employee, person_ids=[str(blocked)])
    assert refused.status_code == 409
    assert refused.json()["person_ids"] == [str(blocked)]
    assert _log(stack, sales, org, direction="in", person_ids=[str(blocked)]).status_code == 201
    deleted = _log(stack, sales, org, person_ids=[str(gone)])
    assert deleted.status_code == 422
    assert deleted.json()["errors"][0]["location"] == ["body", "person_ids"]


def test_a_person_merge_moves_the_participants(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    jobs = {"merged": uuid.uuid4(), "survivor": uuid.uuid4()}
    merged = _person(stack, org, direction, "dup@m.example", employment=jobs["merged"])
    survivor = _person(stack, org, direction, "one@m.example", employment=jobs["survivor"])
    ids = {
        name: _log(stack, sales, org, person_ids=[str(p) for p in people]).json()["interaction"][
            "id"
        ]
        for name, people in {
            "merged only": [merged],
            "both": [merged, survivor],
            "survivor only": [survivor],
        }.items()
    }
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.merged",
            PersonMerged(
                survivor_id=survivor,
                merged_id=merged,
                survivor_version=2,
                merged_version=2,
                employments=[
                    MovedEmployment(
                        employment_id=jobs["merged"],
                        organization_id=org,
                        merged_into=jobs["survivor"],
                    )
                ],
            ),
            survivor,
            [direction],
        ),
    )

    def participants(interaction_id: str) -> tuple[list[str], str]:
        found = httpx.get(f"{stack.url}/v1/interactions/{interaction_id}", headers=sales)
        return found.json()["person_ids"], found.headers["etag"]

    wait_for(
        lambda: participants(ids["merged only"])[0] == [str(survivor)],
        60,
        "the merged person's interactions to move",
    )
    assert participants(ids["both"]) == ([str(survivor)], 'W/"2"')  # once, not twice
    assert participants(ids["survivor only"]) == ([str(survivor)], 'W/"1"')  # untouched
    trail = httpx.get(f"{stack.url}/v1/interactions/{ids['both']}/audit", headers=sales).json()
    assert trail[-1]["action"] == "person_merged"
    assert trail[-1]["changes"] == {"person_id": {"old": str(merged), "new": str(survivor)}}
    people = httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=sales).json()["people"]
    assert [p["person_id"] for p in people] == [str(survivor)]  # the folded position is gone

    # the merged person's id stands for the survivor in new entries
    logged = _log(stack, sales, org, person_ids=[str(merged), str(survivor)])
    assert logged.status_code == 201, logged.text
    assert logged.json()["interaction"]["person_ids"] == [str(survivor)]


def _gaps(stack: Stack) -> float:
    metrics = httpx.get(f"{stack.url}/metrics", headers=stack.admin).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("clientele_state_gaps_total{")
    )


def test_a_change_to_a_card_never_seen_is_counted_and_the_state_record_fills_it_in(
    stack: Stack, direction: str
) -> None:
    """ADR 18: the created event was missed (a consumer that started late); the update is not
    dropped silently, and the card comes from the organization's state record."""
    org = uuid.uuid4()
    before = _gaps(stack)
    changes = {"legal_name": FieldChange(old="Старое", new="Новое")}
    _org_event(
        stack,
        "directory.organization.updated",
        OrganizationUpdated(organization_id=org, version=3, changes=changes),
        org,
        direction,
    )
    wait_for(lambda: _gaps(stack) > before, 60, "the gap to be counted")
    card_url = f"{stack.url}/v1/clients/{org}"
    assert httpx.get(card_url, headers=stack.admin).status_code == 404

    def state(version: int, revision: int, **fields: Any) -> None:
        snapshot = OrganizationState(
            organization_id=org,
            version=version,
            revision=revision,
            legal_name=fields.pop("legal_name", "Новое"),
            status="client",
            directions=[direction],
            **fields,
        )
        publish(
            stack.bootstrap,
            ORGANIZATIONS_STATE,
            directory_envelope("directory.organization.state", snapshot, org, [direction]),
        )

    state(3, 10, inn="7707083893")
    wait_for(
        lambda: httpx.get(card_url, headers=stack.admin).status_code == 200,
        60,
        "the card from the state record",
    )
    # an older snapshot arriving late changes nothing; the same version's later revision does
    state(2, 9, legal_name="Старое")
    state(3, 11, inn="7707083893", blocked=True)
    wait_for(
        lambda: httpx.get(card_url, headers=stack.admin).json().get("blocked") is True,
        60,
        "the newer revision",
    )
    card = httpx.get(card_url, headers=stack.admin).json()
    assert (card["legal_name"], card["inn"], card["version"]) == ("Новое", "7707083893", 3)
