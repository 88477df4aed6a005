"""The contact log over HTTP: log, plan, change, complete, cancel; directions, bad input,
optimistic concurrency, the audit trail and the events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clientele_shared.events.catalog import INTERACTION_LOG, notification_requests
from interactions_testkit import Stack, bearer, events_for

pytestmark = pytest.mark.integration


def _at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def _count(stack: Stack, headers: dict[str, str], org: uuid.UUID) -> int:
    response = httpx.get(
        f"{stack.url}/v1/interactions",
        params={"organization_id": str(org), "limit": 500},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    return len(response.json())


def test_log_a_call_and_plan_the_next_in_one_call(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    person = stack.person([direction])
    response = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "call",
            "direction": "out",
            "occurred_at": "2026-03-02T10:15:00+03:00",
            "duration_seconds": 420,
            "person_ids": [str(person), str(person)],
            "responsible_employee_id": str(employee),
            "subject": "Pricing for 2026",
            "notes": "Wants a discount",
            "result": "call_back",
            "deal_id": str(stack.deal(org, [direction])),
            "next": {"due_at": _at(48), "kind": "meeting"},
        },
        headers=sales,
    )
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == 'W/"1"'
    body = response.json()
    logged, planned = body["interaction"], body["next_planned"]
    assert logged["status"] == "done"
    assert logged["occurred_at"] == "2026-03-02T07:15:00Z"
    assert logged["person_ids"] == [str(person)], "duplicates are dropped"
    assert planned["status"] == "planned"
    assert planned["kind"] == "meeting"
    assert planned["follows_id"] == logged["id"]
    assert planned["responsible_employee_id"] == str(employee)
    assert planned["subject"] == "Follow-up: Pricing for 2026"
    assert body["suggested_next"] is None
    assert response.headers["location"] == f"/v1/interactions/{logged['id']}"

    got = httpx.get(f"{stack.url}/v1/interactions/{logged['id']}", headers=sales)
    assert got.status_code == 200
    assert got.headers["etag"] == 'W/"1"'
    assert _count(stack, sales, org) == 2

    events = events_for(stack.bootstrap, INTERACTION_LOG, {logged["id"], planned["id"]}, 2)
    assert sorted(e.type for e in events) == [
        "interactions.interaction.logged",
        "interactions.interaction.planned",
    ]
    assert all(e.directions == (direction,) for e in events)
    assert all(e.actor is not None and e.actor.subject == "alice" for e in events)
    reminders = events_for(
        stack.bootstrap, notification_requests("interactions"), {planned["id"]}, 1
    )
    assert [r.type for r in reminders] == ["interactions.reminder.scheduled"]
    due = datetime.fromisoformat(planned["due_at"])
    reminder_due = datetime.fromisoformat(reminders[0].payload["due_at"])
    assert due - reminder_due == timedelta(minutes=30)
    assert reminders[0].payload["recipient"]["employee_id"] == str(employee)


def test_a_result_suggests_the_next_contact(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    body = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "meeting",
            "subject": "Kick-off",
            "result": "held",
            "responsible_employee_id": str(employee),
        },
        headers=sales,
    ).json()
    suggestion = body["suggested_next"]
    assert suggestion["kind"] == "meeting"
    assert suggestion["subject"] == "Follow-up: Kick-off"
    occurred = datetime.fromisoformat(body["interaction"]["occurred_at"])
    assert datetime.fromisoformat(suggestion["due_at"]) - occurred >= timedelta(days=7)
    assert body["next_planned"] is None


def test_other_directions_see_nothing_and_may_not_write(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    owner = bearer(stack.issuer, "alice", directions=[direction])
    stranger = bearer(stack.issuer, "bob", directions=["elsewhere"])
    officer = bearer(stack.issuer, "sec", roles=["security_officer"])
    draft = {"organization_id": str(org), "kind": "email", "subject": "Offer"}
    created = httpx.post(f"{stack.url}/v1/interactions", json=draft, headers=owner).json()
    interaction_id = created["interaction"]["id"]

    assert (
        httpx.post(f"{stack.url}/v1/interactions", json=draft, headers=stranger).status_code == 404
    )
    url = f"{stack.url}/v1/interactions/{interaction_id}"
    for path in ("", "/audit"):
        response = httpx.get(url + path, headers=stranger)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/problem+json"
    patch = httpx.patch(url, json={"subject": "x"}, headers={**stranger, "If-Match": 'W/"1"'})
    assert patch.status_code == 404
    listed = httpx.get(f"{stack.url}/v1/interactions", headers=stranger, params={"limit": 500})
    assert interaction_id not in {item["id"] for item in listed.json()}
    by_org = httpx.get(
        f"{stack.url}/v1/interactions", headers=stranger, params={"organization_id": str(org)}
    )
    assert by_org.status_code == 404

    assert httpx.get(url, headers=officer).status_code == 200, "a security officer reads"
    refused = httpx.post(f"{stack.url}/v1/interactions", json=draft, headers=officer)
    assert refused.status_code == 403, "but does not write"
    unauthenticated = httpx.get(url)
    assert unauthenticated.status_code == 401
    assert _count(stack, owner, org) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"occurred_at": "2026-03-02T10:15:00"}, "occurred_at"),
        ({"kind": "fax"}, "kind"),
        ({"result": "no_such_result"}, "result"),
        ({"result": "held"}, "result"),
        ({"status": "planned", "due_at": "2026-05-01T10:00:00Z"}, "body"),
        ({"occurred_at": "2099-01-01T00:00:00Z"}, "occurred_at"),
        ({"subject": ""}, "subject"),
        ({"duration_seconds": -5}, "duration_seconds"),
        ({"unknown": 1}, "unknown"),
        (
            {"next": {"due_at": "2020-01-01T00:00:00Z"}, "responsible_employee_id": "EMPLOYEE"},
            "next.due_at",
        ),
        ({"occurred_at": "0001-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "0001-01-01T00:00:00+03:00"}, "occurred_at"),
    ],
    ids=[
        "naive-time",
        "unknown-kind",
        "unknown-result",
        "result-of-another-kind",
        "planned-without-responsible",
        "in-the-future",
        "empty-subject",
        "negative-duration",
        "unknown-field",
        "next-in-the-past",
        "year-one",
        "year-one-east-of-utc",
    ],
)
def test_bad_input_is_a_problem_and_writes_nothing(
    stack: Stack, direction: str, employee: uuid.UUID, change: dict[str, object], field: str
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    draft = {
        "organization_id": str(org),
        "kind": "call",
        "subject": "Hello",
        "responsible_employee_id": None,
        **{k: str(employee) if v == "EMPLOYEE" else v for k, v in change.items()},
    }
    response = httpx.post(f"{stack.url}/v1/interactions", json=draft, headers=sales)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/validation-failed")
    assert any(field in ".".join(error["location"]) for error in problem["errors"]), problem
    assert _count(stack, sales, org) == 0
    assert events_for(stack.bootstrap, INTERACTION_LOG, {str(org)}, 1, timeout_ms=500) == []


def test_changes_need_the_current_etag_and_are_audited(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    created = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "call",
            "status": "planned",
            "due_at": _at(24),
            "responsible_employee_id": str(employee),
            "subject": "Renewal",
        },
        headers=sales,
    ).json()["interaction"]
    url = f"{stack.url}/v1/interactions/{created['id']}"

    missing = httpx.patch(url, json={"notes": "x"}, headers=sales)
    assert missing.status_code == 428
    stale = httpx.patch(url, json={"notes": "x"}, headers={**sales, "If-Match": 'W/"7"'})
    assert stale.status_code == 412
    assert stale.headers["etag"] == 'W/"1"'
    wrong_state = httpx.patch(
        url, json={"result": "reached"}, headers={**sales, "If-Match": 'W/"1"'}
    )
    assert wrong_state.status_code == 422

    new_due = _at(72)
    moved = httpx.patch(
        url,
        json={"due_at": new_due, "notes": "Bring the contract"},
        headers={**sales, "If-Match": 'W/"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] == 'W/"2"'
    assert moved.json()["notes"] == "Bring the contract"

    done = httpx.post(
        f"{url}/complete",
        json={"result": "reached", "duration_seconds": 60},
        headers={**sales, "If-Match": 'W/"2"'},
    )
    assert done.status_code == 200, done.text
    assert done.json()["interaction"]["status"] == "done"
    again = httpx.post(f"{url}/complete", json={}, headers={**sales, "If-Match": 'W/"3"'})
    assert again.status_code == 409
    ahead = httpx.patch(url, json={"occurred_at": _at(24)}, headers={**sales, "If-Match": 'W/"3"'})
    assert ahead.status_code == 422, "a contact that happened is not moved into the future"
    cancel = httpx.post(f"{url}/cancel", json={}, headers={**sales, "If-Match": 'W/"3"'})
    assert cancel.status_code == 409

    trail = httpx.get(f"{url}/audit", headers=sales).json()
    assert [entry["action"] for entry in trail] == ["planned", "rescheduled", "completed"]
    assert trail[1]["changes"]["notes"] == {"old": None, "new": "Bring the contract"}
    assert trail[2]["changes"]["result"] == {"old": None, "new": "reached"}
    assert all(entry["actor_subject"] == "alice" for entry in trail)

    events = events_for(stack.bootstrap, INTERACTION_LOG, {created["id"]}, 4)
    assert [e.type for e in events] == [
        "interactions.interaction.planned",
        "interactions.interaction.rescheduled",
        "interactions.interaction.updated",
        "interactions.interaction.completed",
    ]
    requests = events_for(
        stack.bootstrap, notification_requests("interactions"), {created["id"]}, 3
    )
    assert [r.type for r in requests] == [
        "interactions.reminder.scheduled",
        "interactions.reminder.scheduled",
        "interactions.reminder.cancelled",
    ]
    assert len({r.payload["reminder_id"] for r in requests}) == 1


def test_cancel_a_planned_contact(stack: Stack, direction: str, employee: uuid.UUID) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    created = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "meeting",
            "status": "planned",
            "due_at": _at(5),
            "responsible_employee_id": str(employee),
            "subject": "Demo",
        },
        headers=sales,
    ).json()["interaction"]
    url = f"{stack.url}/v1/interactions/{created['id']}"
    bad = httpx.post(f"{url}/cancel", json={"reason": ""}, headers={**sales, "If-Match": 'W/"1"'})
    assert bad.status_code == 422
    cancelled = httpx.post(
        f"{url}/cancel", json={"reason": "Client busy"}, headers={**sales, "If-Match": 'W/"1"'}
    )
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancel_reason"] == "Client busy"
    frozen = httpx.patch(url, json={"notes": "x"}, headers={**sales, "If-Match": 'W/"2"'})
    assert frozen.status_code == 409


def test_results_are_configured_by_admins(stack: Stack) -> None:
    code = f"r{uuid.uuid4().hex[:8]}"
    sales = bearer(stack.issuer, "alice", directions=["north"])
    listed = httpx.get(f"{stack.url}/v1/results", params={"kind": "call"}, headers=sales)
    assert {"reached", "no_answer"} <= {r["code"] for r in listed.json()}
    draft = {"kind": "call", "code": code, "label": "Voicemail left", "follow_up_days": 1}
    assert httpx.post(f"{stack.url}/v1/results", json=draft, headers=sales).status_code == 403
    created = httpx.post(f"{stack.url}/v1/results", json=draft, headers=stack.admin)
    assert created.status_code == 201, created.text
    again = httpx.post(f"{stack.url}/v1/results", json=draft, headers=stack.admin)
    assert again.status_code == 409
    bad = httpx.post(
        f"{stack.url}/v1/results", json={**draft, "code": "Bad Code"}, headers=stack.admin
    )
    assert bad.status_code == 422
    url = f"{stack.url}/v1/results/call/{code}"
    off = httpx.patch(url, json={"active": False}, headers={**stack.admin, "If-Match": 'W/"1"'})
    assert off.status_code == 200
    assert off.json()["active"] is False
    listed = httpx.get(f"{stack.url}/v1/results", params={"kind": "call"}, headers=sales)
    assert code not in {r["code"] for r in listed.json()}
