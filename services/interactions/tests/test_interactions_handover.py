"""Hand-over of open planned contacts from one employee to another, by direction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clientele_shared.events.catalog import INTERACTION_LOG, notification_requests
from interactions_testkit import Stack, bearer, events_for

pytestmark = pytest.mark.integration


def _plan(stack: Stack, headers: dict[str, str], org: uuid.UUID, employee: uuid.UUID) -> str:
    response = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "call",
            "status": "planned",
            "due_at": (datetime.now(UTC) + timedelta(days=2)).isoformat(),
            "responsible_employee_id": str(employee),
            "subject": "Planned call",
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["interaction"]["id"])


def test_bulk_hand_over_moves_only_open_contacts_the_manager_sees(
    stack: Stack, direction: str
) -> None:
    other_direction = f"{direction}-other"
    leaving = stack.employee([direction, other_direction])
    taking = stack.employee([direction])
    first, second = stack.client([direction]), stack.client([direction])
    foreign = stack.client([other_direction])
    mine = bearer(stack.issuer, "alice", directions=[direction])
    theirs = bearer(stack.issuer, "carol", directions=[other_direction])
    planned = [_plan(stack, mine, first, leaving), _plan(stack, mine, second, leaving)]
    untouched = _plan(stack, theirs, foreign, leaving)
    done = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(first),
            "kind": "call",
            "subject": "Held call",
            "responsible_employee_id": str(leaving),
        },
        headers=mine,
    ).json()["interaction"]["id"]

    head = bearer(stack.issuer, "boss", roles=["head_of_sales"], directions=[direction])
    response = httpx.post(
        f"{stack.url}/v1/handovers",
        json={
            "from_employee_id": str(leaving),
            "to_employee_id": str(taking),
            "reason": "vacation",
        },
        headers=head,
    )
    assert response.status_code == 201, response.text
    handover = response.json()
    assert handover["interactions_moved"] == 2
    assert sorted(handover["interaction_ids"]) == sorted(planned)
    assert sorted(handover["organizations"]) == sorted([str(first), str(second)])

    for interaction_id in planned:
        got = httpx.get(f"{stack.url}/v1/interactions/{interaction_id}", headers=mine).json()
        assert got["responsible_employee_id"] == str(taking)
        assert got["version"] == 2
        trail = httpx.get(
            f"{stack.url}/v1/interactions/{interaction_id}/audit", headers=mine
        ).json()
        assert [e["action"] for e in trail] == ["planned", "handed_over"]
        assert "vacation" in trail[1]["note"]
    kept = httpx.get(f"{stack.url}/v1/interactions/{untouched}", headers=theirs).json()
    assert kept["responsible_employee_id"] == str(leaving), "another direction is not touched"
    held = httpx.get(f"{stack.url}/v1/interactions/{done}", headers=mine).json()
    assert held["responsible_employee_id"] == str(leaving), "history stays as it was"

    events = events_for(stack.bootstrap, INTERACTION_LOG, set(planned), 4)
    handed = [e for e in events if e.type == "interactions.interaction.handed_over"]
    assert len(handed) == 2
    assert {e.payload["to_employee_id"] for e in handed} == {str(taking)}
    clients = events_for(stack.bootstrap, INTERACTION_LOG, {str(first), str(second)}, 2)
    assert {e.type for e in clients} == {"interactions.responsibility.handed_over"}
    assert {e.payload["handover_id"] for e in clients} == {handover["id"]}
    reminders = events_for(stack.bootstrap, notification_requests("interactions"), set(planned), 4)
    latest = {r.payload["reminder_id"]: r for r in reminders}
    assert {r.payload["recipient"]["employee_id"] for r in latest.values()} == {str(taking)}


def test_hand_over_one_client(stack: Stack, direction: str) -> None:
    leaving, taking = stack.employee([direction]), stack.employee([direction])
    target, other = stack.client([direction]), stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    moved = _plan(stack, sales, target, leaving)
    stays = _plan(stack, sales, other, leaving)
    head = bearer(stack.issuer, "boss", roles=["head_of_sales"], directions=[direction])
    response = httpx.post(
        f"{stack.url}/v1/handovers",
        json={
            "from_employee_id": str(leaving),
            "to_employee_id": str(taking),
            "organization_id": str(target),
        },
        headers=head,
    )
    assert response.status_code == 201, response.text
    assert response.json()["interaction_ids"] == [moved]
    other_contact = httpx.get(f"{stack.url}/v1/interactions/{stays}", headers=sales).json()
    assert other_contact["responsible_employee_id"] == str(leaving)


def test_hand_over_refusals_write_nothing(stack: Stack, direction: str) -> None:
    leaving, taking = stack.employee([direction]), stack.employee([direction])
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    contact = _plan(stack, sales, org, leaving)
    body = {"from_employee_id": str(leaving), "to_employee_id": str(taking)}
    url = f"{stack.url}/v1/handovers"

    assert httpx.post(url, json=body, headers=sales).status_code == 403, "sales may not"
    head = bearer(stack.issuer, "boss", roles=["head_of_sales"], directions=[direction])
    same = httpx.post(url, json={**body, "to_employee_id": str(leaving)}, headers=head)
    assert same.status_code == 422
    assert same.headers["content-type"] == "application/problem+json"
    stranger = bearer(stack.issuer, "eve", roles=["head_of_sales"], directions=["elsewhere"])
    hidden = httpx.post(url, json={**body, "organization_id": str(org)}, headers=stranger)
    assert hidden.status_code == 404
    unseen = httpx.post(url, json=body, headers=stranger)
    assert unseen.status_code == 422, "the employee taking over is not one the caller sees"
    theirs = stack.employee(["elsewhere"])
    nothing = httpx.post(url, json={**body, "to_employee_id": str(theirs)}, headers=stranger)
    assert nothing.status_code == 201
    assert nothing.json()["interactions_moved"] == 0, "invisible contacts are not moved"
    got = httpx.get(f"{stack.url}/v1/interactions/{contact}", headers=sales).json()
    assert got["responsible_employee_id"] == str(leaving)
    assert got["version"] == 1
