"""The in-app inbox through a real notifier: live Server-Sent Events, unread count, mark read,
resuming a stream with Last-Event-ID; and bad input answered as problems with nothing written."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from notifier_testkit import (
    WEBHOOK_SECRET,
    Publish,
    SmtpServer,
    bearer,
    known_employee,
    notifier_env,
)

pytestmark = pytest.mark.integration


class Stream:
    """Reads an SSE stream in a thread; events land in a queue."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.connected = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self.thread.start()
        assert self.connected.wait(10), "the stream did not connect"

    def _read(self, url: str, headers: dict[str, str]) -> None:
        with httpx.stream("GET", url, headers=headers, params={"keepalive": 1}, timeout=30) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            event: dict[str, str] = {}
            for line in r.iter_lines():
                if self.stop.is_set():
                    return
                if line.startswith(": connected"):
                    self.connected.set()
                elif line.startswith(("id: ", "event: ", "data: ")):
                    name, _, value = line.partition(": ")
                    event[name] = value
                elif line == "" and "data" in event:
                    self.events.put({"id": event["id"], **json.loads(event["data"])})
                    event = {}

    def next(self) -> dict[str, Any]:
        return self.events.get(timeout=30)

    def close(self) -> None:
        self.stop.set()


def notify(publish: Publish, employee: str, subject: str) -> None:
    publish(
        "pipeline",
        "pipeline.notification.requested",
        {
            "idempotency_key": str(uuid.uuid4()),
            "channel": "inapp",
            "kind": "deal.assigned",
            "recipients": [{"employee_id": employee}],
            "subject": subject,
            "template": "deal-assigned",
            "data": {"deal": subject, "organization": "ООО «Ромашка»"},
        },
    )


def test_inbox_streams_counts_and_marks_read(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    employee = f"emp-{uuid.uuid4().hex[:8]}"
    me = bearer(issuer, employee, roles=("sales",))
    stream = Stream(f"{notifier.url}/v1/inbox/stream", me)
    notify(publish, employee, "D-1")
    first = stream.next()
    stream.close()
    assert first["title"] == "Deal assigned: D-1"
    assert "ООО «Ромашка»" in first["body"]
    assert first["kind"] == "deal.assigned"

    notify(publish, employee, "D-2")  # while no stream is open
    resumed = Stream(f"{notifier.url}/v1/inbox/stream", {**me, "Last-Event-ID": first["id"]})
    second = resumed.next()
    resumed.close()
    assert second["title"] == "Deal assigned: D-2"

    count = httpx.get(f"{notifier.url}/v1/inbox/unread-count", headers=me).json()
    assert count == {"unread": 2}
    other = bearer(issuer, "someone-else", roles=("sales",))
    assert (
        httpx.post(f"{notifier.url}/v1/inbox/{first['id']}/read", headers=other).status_code == 404
    )
    marked = httpx.post(f"{notifier.url}/v1/inbox/{first['id']}/read", headers=me)
    assert marked.status_code == 200
    assert marked.json()["read_at"] is not None
    assert httpx.get(f"{notifier.url}/v1/inbox/unread-count", headers=me).json() == {"unread": 1}
    unread = httpx.get(f"{notifier.url}/v1/inbox", params={"unread": True}, headers=me).json()
    assert [n["title"] for n in unread] == ["Deal assigned: D-2"]
    assert httpx.get(f"{notifier.url}/v1/inbox", headers=other).json() == []


def test_bad_input_is_a_problem_and_writes_nothing(
    start_service: Callable[..., ServiceProcess], smtp: SmtpServer, issuer: TokenIssuer
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    admin = bearer(issuer)
    url = f"{notifier.url}/v1/webhooks"
    before = httpx.get(url, headers=admin).json()
    for body in (
        {"name": "short-secret", "url": "http://127.0.0.1:1/x", "secret": "too short"},
        {"name": "bad-url", "url": "ftp://example.com", "secret": WEBHOOK_SECRET},
        {"name": "Bad Name!", "url": "http://127.0.0.1:1/x", "secret": WEBHOOK_SECRET},
        {
            "name": "slow",
            "url": "http://127.0.0.1:1/x",
            "secret": WEBHOOK_SECRET,
            "timeout_seconds": 600,
        },
    ):
        response = httpx.post(url, json=body, headers=admin)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert WEBHOOK_SECRET not in response.text
    assert httpx.get(url, headers=admin).json() == before
    name = f"dup-{uuid.uuid4().hex[:8]}"
    good = {"name": name, "url": "http://127.0.0.1:1/x", "secret": WEBHOOK_SECRET}
    assert httpx.post(url, json=good, headers=admin).status_code == 201
    duplicate = httpx.post(url, json=good, headers=admin)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    sales = bearer(issuer, f"sam-{uuid.uuid4().hex[:8]}", roles=("sales",))
    assert httpx.post(url, json=good, headers=sales).status_code == 403
    assert httpx.get(f"{notifier.url}/v1/deliveries", headers=sales).status_code == 403
    missing = httpx.get(f"{notifier.url}/v1/deliveries/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"

    prefs = f"{notifier.url}/v1/preferences/me"
    for body in (
        {"timezone": "Mars/Olympus"},
        {"quiet_start": "25:00", "quiet_end": "07:00"},
        {"quiet_start": "22:00"},
        {"channels": {"*": ["pigeon"]}},
    ):
        response = httpx.put(prefs, json=body, headers=sales)
        assert response.status_code == 422, response.text
    assert httpx.get(prefs, headers=sales).json()["timezone"] == "UTC"
    saved = httpx.put(
        prefs,
        json={
            "channels": {"*": ["inapp"]},
            "quiet_start": "22:00",
            "quiet_end": "07:00",
            "timezone": "Europe/Moscow",
            "digest": "daily",
        },
        headers=sales,
    )
    assert saved.status_code == 200, saved.text
    assert httpx.get(prefs, headers=sales).json()["timezone"] == "Europe/Moscow"


def _read_until_closed(url: str, headers: dict[str, str], limit: float) -> tuple[list[str], float]:
    """The event names of a stream read until the server ends it, and how long that took."""
    started = time.monotonic()
    names: list[str] = []
    with httpx.stream("GET", url, headers=headers, params={"keepalive": 1}, timeout=limit) as r:
        assert r.status_code == 200, r.read()
        for line in r.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
            assert time.monotonic() - started < limit, "the stream outlived its token"
    return names, time.monotonic() - started


def test_a_stream_ends_when_its_token_expires_or_its_employee_is_deactivated(
    start_service: Callable[..., ServiceProcess],
    smtp: SmtpServer,
    publish: Publish,
    issuer: TokenIssuer,
    infra: Infrastructure,
) -> None:
    notifier = start_service("notifier", **notifier_env(smtp))
    url = f"{notifier.url}/v1/inbox/stream"
    short = {"Authorization": f"Bearer {issuer.mint('emp-short', roles=['sales'], ttl_seconds=3)}"}
    names, took = _read_until_closed(url, short, limit=20)
    assert names[-1] == "expired"
    assert took < 10

    employee = str(uuid.uuid4())
    announced = {"employee_id": employee, "version": 1, "email": f"{employee}@example.com"}
    publish(
        "directory",
        "directory.employee.created",
        announced | {"name": "Анна", "roles": ["sales"], "directions": ["north"]},
        aggregate_id=employee,
    )
    wait_for(lambda: known_employee(infra, employee, 1), 60, "the employee to be known")
    token = issuer.mint(employee, roles=["sales"], directions=["north"], ttl_seconds=3600)
    deactivated = threading.Timer(
        2,
        publish,
        args=(
            "directory",
            "directory.employee.updated",
            {
                "employee_id": employee,
                "version": 2,
                "changes": {"active": {"old": True, "new": False}},
            },
        ),
        kwargs={"aggregate_id": employee},
    )
    deactivated.start()
    names, _ = _read_until_closed(url, {"Authorization": f"Bearer {token}"}, limit=60)
    assert names[-1] == "revoked"
