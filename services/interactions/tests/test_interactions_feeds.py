"""Secret calendar feed URLs: issued, rotated and revoked per employee; the feed answers without
a bearer token and shows what the employee sees at the time it is fetched."""

from __future__ import annotations

import base64
import secrets
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import icalendar
import pytest
from clientele_shared.calendar_feeds import new_token, parse_token, secret_matches
from clientele_shared.events.catalog import EMPLOYEES
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import EmployeeCreated, EmployeeUpdated
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish


def test_tokens_parse_back_and_compare_secrets() -> None:
    token = new_token()
    assert len(token.token) == 64
    parsed = parse_token(token.token)
    assert parsed is not None
    feed_id, secret = parsed
    assert feed_id == token.feed_id
    assert secret_matches(token.secret_sha256, secret)
    assert not secret_matches(token.secret_sha256, secrets.token_bytes(32))
    assert parse_token(token.token[:-1]) is None
    assert parse_token("!" * 64) is None
    assert new_token().token != token.token


def _summaries(response: httpx.Response) -> list[str]:
    calendar = icalendar.Calendar.from_ical(response.content)
    return sorted(str(event["summary"]) for event in calendar.walk("VEVENT"))


@pytest.mark.integration
def test_a_secret_feed_url_per_employee(stack: Stack, direction: str) -> None:
    other = f"{direction}-x"
    employee = uuid.uuid4()
    email = f"e-{employee.hex[:8]}@ourco.example"
    publish(
        stack.bootstrap,
        EMPLOYEES,
        directory_envelope(
            "directory.employee.created",
            EmployeeCreated(
                employee_id=employee,
                email=email,
                name="Алиса",
                roles=["sales"],
                directions=[direction],
            ),
            employee,
        ),
    )
    stack.wait_for_row("employees", "employee_id", employee)
    mine, theirs = stack.client([direction], legal_name="ООО «Своя»"), stack.client([other])
    due = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    for org, subject in ((mine, "Встреча"), (theirs, "Чужая встреча")):
        httpx.post(
            f"{stack.url}/v1/interactions",
            json={
                "organization_id": str(org),
                "kind": "meeting",
                "status": "planned",
                "due_at": due,
                "responsible_employee_id": str(employee),
                "subject": subject,
            },
            headers=stack.admin,
        ).raise_for_status()
    me = bearer(stack.issuer, str(employee), directions=[direction])
    issue = f"{stack.url}/v1/employees/{employee}/calendar-feed"
    wait_for(lambda: httpx.get(issue, headers=me).status_code == 200, 60, "the employee")

    colleague = bearer(stack.issuer, "bob", directions=[direction])
    assert httpx.post(issue, headers=colleague).status_code == 404  # not his calendar
    assert httpx.post(issue).status_code == 401
    first = httpx.post(issue, headers=me)
    assert first.status_code == 201, first.text
    url = stack.url + first.json()["url"]

    feed = httpx.get(url)  # no bearer token
    assert feed.status_code == 200
    assert feed.headers["content-type"].startswith("text/calendar")
    assert feed.headers["cache-control"] == "private, no-store"
    assert _summaries(feed) == ["Встреча — ООО «Своя»"]

    # the employee's directions are read when the feed is fetched
    moved = EmployeeUpdated(
        employee_id=employee,
        version=2,
        changes={"directions": FieldChange(old=[direction], new=[direction, other])},
    )
    publish(
        stack.bootstrap,
        EMPLOYEES,
        directory_envelope("directory.employee.updated", moved, employee),
    )
    wait_for(lambda: len(_summaries(httpx.get(url))) == 2, 60, "the new direction")

    # a wrong secret for a real feed id, and garbage, are both unknown
    parsed = parse_token(url.rsplit("/", 1)[1].removesuffix(".ics"))
    assert parsed is not None
    forged = base64.urlsafe_b64encode(parsed[0].bytes + secrets.token_bytes(32)).decode()
    assert httpx.get(f"{stack.url}/v1/calendar-feeds/{forged.rstrip('=')}.ics").status_code == 404
    assert httpx.get(f"{stack.url}/v1/calendar-feeds/{'A' * 64}.ics").status_code == 404
    assert httpx.get(f"{stack.url}/v1/calendar-feeds/short.ics").status_code == 404

    # rotation: the old URL stops, the new one works; an administrator may rotate too
    second = httpx.post(issue, headers=stack.admin)
    assert second.status_code == 201
    rotated = stack.url + second.json()["url"]
    assert httpx.get(url).status_code == 404
    assert httpx.get(rotated).status_code == 200

    assert httpx.delete(issue, headers=me).status_code == 204
    assert httpx.get(rotated).status_code == 404
    assert httpx.delete(issue, headers=me).status_code == 404
    history = httpx.get(issue, headers=me).json()
    assert [(h["created_by"], h["revoked_by"]) for h in history] == [
        ("root", str(employee)),
        (str(employee), "root"),
    ]

    # a deactivated employee's feed answers nothing
    third = stack.url + httpx.post(issue, headers=me).json()["url"]
    assert httpx.get(third).status_code == 200
    gone = EmployeeUpdated(
        employee_id=employee, version=3, changes={"active": FieldChange(old=True, new=False)}
    )
    publish(
        stack.bootstrap, EMPLOYEES, directory_envelope("directory.employee.updated", gone, employee)
    )
    wait_for(lambda: httpx.get(third).status_code == 404, 60, "the deactivation")
