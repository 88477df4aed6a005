"""The service's own mailing worker sweeps greetings: a person whose birthday is today in their
time zone gets the greeting through the notifier, once, with nothing run by the test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS_STATE, notification_requests
from clientele_shared.events.schemas.directory import (
    EmploymentState,
    OrganizationState,
    PersonState,
)
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, directory_envelope, running
from mailings_testkit import PUBLIC_URL

REQUESTS = notification_requests("campaigns")


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The service with its mailing worker, looking at each greeting every second."""
    env = {
        **service_env,
        "RUN_MAILING_WORKER": "true",
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "GREETING_SWEEP_INTERVAL": "1",
    }
    logs = tmp_path_factory.mktemp("greetings-worker")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def test_the_worker_greets_a_birthday_today_once(stack: Stack) -> None:
    stack.execute("UPDATE greetings SET active = false")
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    direction = f"w{uuid.uuid4().hex[:12]}"
    # a fixed-offset zone where it is about noon now: its date stays today for hours
    now = datetime.now(UTC)
    offset = 12 - now.hour
    zone = "Etc/UTC" if offset == 0 else f"Etc/GMT{'-' if offset > 0 else '+'}{abs(offset)}"
    today = now.astimezone(ZoneInfo(zone)).date()
    organization = uuid.uuid4()
    stack.publish_state(
        "directory.organization.state",
        OrganizationState(
            organization_id=organization,
            version=1,
            revision=1,
            legal_name="ООО «Юбилей»",
            attributes={"time_zone": zone},
            status="active",
            directions=[direction],
        ),
        str(organization),
    )
    person = uuid.uuid4()
    state = PersonState(
        person_id=person,
        version=1,
        revision=1,
        first_name="Иван",
        middle_name="Петрович",
        last_name="Именинников",
        birthday=today.replace(year=1980),  # a leap year: 29 February too
        emails=["ivan@jubilee.ru"],
        directions=[direction],
        employments=[
            EmploymentState(employment_id=uuid.uuid4(), organization_id=organization, version=1)
        ],
    )
    stack.send(PERSONS_STATE, [directory_envelope("directory.person.state", state, person)])
    stack.wait_until(
        "SELECT count(*) FROM mailing_contacts c JOIN persons p USING (person_id) "
        "JOIN mailing_organizations m ON m.organization_id = :o WHERE person_id = :p",
        1,
        "the person and the organization",
        p=person,
        o=organization,
    )
    user = stack.user([direction])
    body = {"person_id": str(person), "channel": "email", "granted": True, "source": "form"}
    assert stack.call("POST", "/v1/consents", user, json=body).status_code == 201
    greeting = stack.call(
        "POST",
        "/v1/greetings",
        user,
        json={
            "title": "С днём рождения",
            "directions": [direction],
            "occasion": {"kind": "birthday"},
            "send_at": "00:00",
            "template": {
                "subject": "С днём рождения, {{ person.salutation }}!",
                "text": "Поздравляем! {{ unsubscribe_url }}",
            },
        },
    )
    assert greeting.status_code == 201, greeting.text

    stack.wait_until(
        "SELECT count(*) FROM greeting_sends WHERE greeting_id = :g",
        1,
        "the greeting swept",
        g=greeting.json()["id"],
    )
    mailing_id = stack.scalar(
        "SELECT mailing_id FROM greeting_sends WHERE greeting_id = :g", g=greeting.json()["id"]
    )
    key = f"mailing:{mailing_id}:{person}"
    [request] = stack.events(REQUESTS, {key}, 1)
    assert request.payload["subject"] == "С днём рождения, Уважаемый Иван Петрович!"
    # swept again every second, still once
    swept = stack.scalar("SELECT next_run_at FROM greetings WHERE id = :g", g=greeting.json()["id"])
    stack.wait_until(
        "SELECT count(*) FROM greetings WHERE id = :g AND next_run_at > :t",
        1,
        "another sweep",
        g=greeting.json()["id"],
        t=swept,
    )
    assert (
        stack.scalar(
            "SELECT count(*) FROM greeting_sends WHERE greeting_id = :g", g=greeting.json()["id"]
        )
        == 1
    )
    stack.execute("UPDATE greetings SET active = false")
    stack.execute(
        "UPDATE mailings SET status = 'cancelled' "
        "WHERE audience->>'kind' = 'greeting' AND status <> 'done'"
    )
