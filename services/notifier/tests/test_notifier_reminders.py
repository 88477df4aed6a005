"""Reminders through real notifier processes: fired once with two replicas (a few, and a
thousand due at the same moment), rescheduled and cancelled by later events, and surviving a
notifier restart together with a lost Redis index."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
from clientele_notifier.reminders.scheduler import INDEX, INDEX_BUILT
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import DELIVERIES
from clientele_shared.events.envelope import Envelope
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from notifier_testkit import (
    EventTail,
    Publish,
    SmtpServer,
    bearer,
    deliveries,
    notifier_env,
)

pytestmark = pytest.mark.integration

SCHEDULED = "interactions.reminder.scheduled"
CANCELLED = "interactions.reminder.cancelled"


def schedule(
    publish: Publish, reminder_id: uuid.UUID, employee: str, due: dt.datetime, subject: str
) -> None:
    publish(
        "interactions",
        SCHEDULED,
        {
            "reminder_id": str(reminder_id),
            "due_at": due.isoformat(),
            "recipient": {"employee_id": employee},
            "subject": subject,
            "text": "call the client back",
        },
        aggregate_id=str(reminder_id),
    )


def reminder(notifier: ServiceProcess, issuer: TokenIssuer, reminder_id: uuid.UUID) -> Any:
    response = httpx.get(f"{notifier.url}/v1/reminders/{reminder_id}", headers=bearer(issuer))
    return response.json() if response.status_code == 200 else None


def inbox(notifier: ServiceProcess, issuer: TokenIssuer, employee: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{notifier.url}/v1/inbox",
        params={"limit": 200},
        headers=bearer(issuer, employee, roles=("sales",)),
    )
    assert response.status_code == 200, response.text
    body: list[dict[str, Any]] = response.json()
    return body


def test_reminders_fire_once_with_two_notifiers(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    env = notifier_env(smtp)
    first = start_service("notifier", **env)
    second = start_service("notifier", **env)
    employee = f"emp-{uuid.uuid4().hex[:8]}"
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=6)
    ids = [uuid.uuid4() for _ in range(30)]
    for index, reminder_id in enumerate(ids):
        schedule(publish, reminder_id, employee, due, f"reminder {index}")
    cancelled, moved = ids[0], ids[1]
    publish("interactions", CANCELLED, {"reminder_id": str(cancelled)}, aggregate_id=str(cancelled))
    later = due + dt.timedelta(seconds=3)
    schedule(publish, moved, employee, later, "reminder 1 (moved)")

    wait_for(
        lambda: all(reminder(first, issuer, i) is not None for i in ids),
        60,
        "the notifiers to take the reminders",
    )
    wait_for(lambda: len(inbox(first, issuer, employee)) == 29, 60, "29 reminders to fire")
    time.sleep(2)  # would any replica fire one again?

    notes = inbox(second, issuer, employee)
    assert len(notes) == 29
    assert len({n["id"] for n in notes}) == 29
    assert sorted(n["title"] for n in notes) == sorted(
        [f"Reminder: reminder {i}" for i in range(2, 30)] + ["Reminder: reminder 1 (moved)"]
    )
    assert reminder(first, issuer, cancelled)["state"] == "cancelled"
    moved_state = reminder(first, issuer, moved)
    assert moved_state["state"] == "fired"
    assert dt.datetime.fromisoformat(moved_state["fired_at"]) >= later
    for reminder_id in ids[1:]:
        state = reminder(second, issuer, reminder_id)
        assert state["state"] == "fired"
        assert dt.datetime.fromisoformat(state["fired_at"]) >= dt.datetime.fromisoformat(
            state["due_at"]
        )
        assert len(deliveries(first, issuer, f"reminder:{reminder_id}")) == 1


def test_a_thousand_reminders_due_together_fire_once_across_two_notifiers(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
    infra: Infrastructure,
) -> None:
    """Both replicas claim batches from the same head of the index at the same moment."""
    env = notifier_env(smtp)
    first = start_service("notifier", **env)
    second = start_service("notifier", **env)
    tag = uuid.uuid4().hex[:8]
    employees = [f"emp-{tag}-{n}" for n in range(100)]
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8)
    ids = [uuid.uuid4() for _ in range(1000)]
    wanted = {str(i) for i in ids}
    with EventTail(infra.kafka_bootstrap_servers, DELIVERIES) as tail:
        publish.many(
            "interactions",
            [
                (
                    SCHEDULED,
                    {
                        "reminder_id": str(reminder_id),
                        "due_at": due.isoformat(),
                        "recipient": {"employee_id": employees[n % len(employees)]},
                        "subject": f"batch {n}",
                    },
                    str(reminder_id),
                )
                for n, reminder_id in enumerate(ids)
            ],
        )

        def fired() -> list[Envelope]:
            return [
                e
                for e in tail.of_type("notifier.reminder.fired")
                if e.payload["reminder_id"] in wanted
            ]

        wait_for(lambda: {e.payload["reminder_id"] for e in fired()} == wanted, 90, "all to fire")
        time.sleep(2)  # would a replica fire one again?
        events = fired()
    assert len(events) == len(ids)  # each exactly once
    assert all(dt.datetime.fromisoformat(e.payload["fired_at"]) >= due for e in events)

    def delivered() -> int:
        return sum(len(inbox(second, issuer, employee)) for employee in employees)

    wait_for(lambda: delivered() == len(ids), 60, "every reminder in an inbox")
    sample = ids[:: len(ids) // 20]
    for reminder_id in sample:
        (one,) = deliveries(first, issuer, f"reminder:{reminder_id}")
        assert one["state"] == "sent"
        assert [entry["outcome"] for entry in one["log"]] == ["sent"]
    time.sleep(1)
    assert delivered() == len(ids)


def test_reminder_survives_a_notifier_restart_and_a_lost_redis_index(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
    infra: Infrastructure,
) -> None:
    env = notifier_env(smtp)
    notifier = start_service("notifier", **env)
    employee = f"emp-{uuid.uuid4().hex[:8]}"
    reminder_id = uuid.uuid4()
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)
    schedule(publish, reminder_id, employee, due, "after the restart")
    wait_for(
        lambda: reminder(notifier, issuer, reminder_id) is not None, 60, "the reminder to arrive"
    )
    notifier.stop()
    client = redis.Redis.from_url(infra.redis_url)
    assert client.zscore(INDEX, str(reminder_id)) is not None
    client.delete(INDEX, INDEX_BUILT)  # Redis lost its data while the notifier was down
    client.close()
    time.sleep(max(0.0, (due - dt.datetime.now(dt.UTC)).total_seconds() + 1))

    restarted = start_service("notifier", **env)
    wait_for(lambda: len(inbox(restarted, issuer, employee)) == 1, 60, "the reminder to fire")
    state = reminder(restarted, issuer, reminder_id)
    assert state["state"] == "fired"
    assert dt.datetime.fromisoformat(state["fired_at"]) >= due
    time.sleep(1)
    assert len(inbox(restarted, issuer, employee)) == 1
