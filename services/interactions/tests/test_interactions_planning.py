"""Planning: the overdue worker driven by a controllable clock; reminders and overdue notices
requested from the notifier."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from clientele_interactions.clock import ManualClock
from clientele_interactions.log.overdue import OverdueWorker
from clientele_interactions.tables import outbox as outbox_table
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.catalog import INTERACTION_LOG, REGISTRY, notification_requests
from clientele_shared.events.outbox import Outbox
from interactions_testkit import Stack, bearer, events_for

pytestmark = pytest.mark.integration


def run_worker(stack: Stack, clock: ManualClock) -> int:
    """Run the overdue worker against the service's database until it finds nothing more; the
    service process's relay publishes what it writes to the outbox."""

    async def drain() -> int:
        engine = create_engine(stack.database_url, pool_size=2)
        try:
            worker = OverdueWorker(
                sessionmaker(engine),
                Outbox("interactions", REGISTRY, outbox_table),
                clock,
                batch=200,
            )
            total = 0
            while marked := await worker.tick():
                total += marked
            return total
        finally:
            await engine.dispose()

    return asyncio.run(drain())


def test_overdue_once_per_due_time_with_a_controllable_clock(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction], legal_name="ООО «Вектор»")
    sales = bearer(stack.issuer, "alice", directions=[direction])
    start = datetime.now(UTC).replace(microsecond=0)
    due = start + timedelta(hours=1)
    created = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "call",
            "status": "planned",
            "due_at": due.isoformat(),
            "responsible_employee_id": str(employee),
            "subject": "Check the delivery",
        },
        headers=sales,
    ).json()["interaction"]
    url = f"{stack.url}/v1/interactions/{created['id']}"
    clock = ManualClock(start)

    run_worker(stack, clock)
    assert httpx.get(url, headers=sales).json()["overdue_at"] is None, "not due yet"

    clock.advance(timedelta(minutes=59, seconds=59))
    run_worker(stack, clock)
    assert httpx.get(url, headers=sales).json()["overdue_at"] is None

    clock.advance(timedelta(seconds=1))
    run_worker(stack, clock)
    marked = httpx.get(url, headers=sales).json()
    assert datetime.fromisoformat(marked["overdue_at"]) == due
    assert marked["version"] == 1, "becoming overdue is not an edit: If-Match stays valid"

    clock.advance(timedelta(hours=5))
    run_worker(stack, clock)  # nothing new for this contact
    overdue = [
        e
        for e in events_for(stack.bootstrap, INTERACTION_LOG, {created["id"]}, 3, timeout_ms=3000)
        if e.type == "interactions.interaction.overdue"
    ]
    assert len(overdue) == 1
    assert overdue[0].payload["responsible_employee_id"] == str(employee)
    assert overdue[0].directions == (direction,)
    assert overdue[0].actor is not None
    assert overdue[0].actor.kind == "service"

    listed = httpx.get(
        f"{stack.url}/v1/interactions",
        params={"organization_id": str(org), "overdue": "true"},
        headers=sales,
    ).json()
    assert [item["id"] for item in listed] == [created["id"]]

    # moved to a new due time it may become overdue once more
    new_due = datetime.now(UTC) + timedelta(days=1)
    moved = httpx.patch(
        url, json={"due_at": new_due.isoformat()}, headers={**sales, "If-Match": 'W/"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["overdue_at"] is None
    clock.set(new_due + timedelta(minutes=1))
    run_worker(stack, clock)
    run_worker(stack, clock)
    events = events_for(stack.bootstrap, INTERACTION_LOG, {created["id"]}, 4, timeout_ms=3000)
    assert [e.type for e in events] == [
        "interactions.interaction.planned",
        "interactions.interaction.overdue",
        "interactions.interaction.rescheduled",
        "interactions.interaction.overdue",
    ]

    requests = events_for(
        stack.bootstrap, notification_requests("interactions"), {created["id"]}, 4, timeout_ms=3000
    )
    notices = [r for r in requests if r.type == "interactions.notification.requested"]
    assert len(notices) == 2
    assert len({n.payload["idempotency_key"] for n in notices}) == 2
    assert notices[0].payload["channel"] == "inapp"
    assert notices[0].payload["recipients"] == [
        {"email": None, "employee_id": str(employee), "endpoint": None, "name": None}
    ]
    assert "ООО «Вектор»" in notices[0].payload["subject"]
    trail = [e["action"] for e in httpx.get(f"{url}/audit", headers=sales).json()]
    assert trail == ["planned", "overdue", "rescheduled", "overdue"]


def test_a_contact_planned_in_the_past_has_no_reminder_and_is_overdue_at_once(
    stack: Stack, direction: str, employee: uuid.UUID
) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    created = httpx.post(
        f"{stack.url}/v1/interactions",
        json={
            "organization_id": str(org),
            "kind": "meeting",
            "status": "planned",
            "due_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "responsible_employee_id": str(employee),
            "subject": "Forgotten meeting",
        },
        headers=sales,
    ).json()["interaction"]
    requests = events_for(
        stack.bootstrap, notification_requests("interactions"), {created["id"]}, 1
    )
    assert [r.type for r in requests] == ["interactions.reminder.cancelled"]
    run_worker(stack, ManualClock(datetime.now(UTC)))
    got = httpx.get(f"{stack.url}/v1/interactions/{created['id']}", headers=sales).json()
    assert got["overdue_at"] is not None
