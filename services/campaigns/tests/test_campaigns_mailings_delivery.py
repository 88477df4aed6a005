"""Each recipient gets a mailing at most once across a SIGKILL mid-send, a restart and two
replicas handing over the same mailing: every recipient's delivery request is written once
(one event id per idempotency key; a relay's redelivery repeats the same event, which the
notifier takes once by its key)."""

from __future__ import annotations

import signal
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS_STATE, notification_requests
from clientele_shared.events.schemas.directory import EmploymentState, PersonState
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from clientele_testkit.stack import VENV_BIN, Stack, directory_envelope, running
from mailings_testkit import PUBLIC_URL, mailing_body

NORTH = ["north"]
RECIPIENTS = 1000
STARTUP = 300
"""Seconds a replica may take to start on a loaded machine (a limit, not a measurement)."""


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    env = {**service_env, "RUN_MAILING_WORKER": "false", "PUBLIC_BASE_URL": PUBLIC_URL}
    logs = tmp_path_factory.mktemp("mailings-delivery")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def _audience(stack: Stack, count: int) -> uuid.UUID:
    """An organization with ``count`` consenting accountants (set up through the state topic
    and, for speed, the consent ledger directly)."""
    organization = stack.organization(NORTH)
    states = []
    for number in range(count):
        person_id = uuid.uuid4()
        state = PersonState(
            person_id=person_id,
            version=1,
            revision=1,
            first_name="Иван",
            middle_name="Петрович",
            last_name=f"Иванов-{number}",
            emails=[f"ivan{number}@example.ru"],
            directions=NORTH,
            employments=[
                EmploymentState(
                    employment_id=uuid.uuid4(),
                    organization_id=organization,
                    version=1,
                    position="Бухгалтер",
                )
            ],
        )
        states.append(directory_envelope("directory.person.state", state, person_id))
    stack.send(PERSONS_STATE, states)
    known = (
        "SELECT count(*) FROM mailing_contacts c JOIN persons p USING (person_id) "
        "WHERE :o = ANY(c.organization_ids)"
    )
    stack.wait_until(known, count, "the contacts", o=organization)
    stack.execute(
        "INSERT INTO consents (person_id, channel, granted, source, actor_subject) "
        "SELECT person_id, 'email', true, 'import', 'test' FROM mailing_contacts "
        "WHERE :o = ANY(organization_ids)",
        o=organization,
    )
    return organization


def test_each_recipient_once_across_a_sigkill_and_two_replicas(
    stack: Stack, service_env: dict[str, str], tmp_path: Path
) -> None:
    organization = _audience(stack, RECIPIENTS)
    north = stack.user(NORTH)
    body = mailing_body({"kind": "organizations", "organization_ids": [str(organization)]})
    created = stack.call("POST", "/v1/mailings", north, json=body)
    assert created.status_code == 201, created.text
    mailing_id = created.json()["id"]
    sent = stack.call("POST", f"/v1/mailings/{mailing_id}/send", north, if_match=1)
    assert sent.status_code == 200, sent.text

    env = {
        **service_env,
        "DATABASE_URL": stack.database_url,
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "MAILING_BATCH_SIZE": "10",
        "MAILING_POLL_INTERVAL": "0.1",
    }
    replicas = [ServiceProcess("campaigns", env, tmp_path, VENV_BIN) for _ in range(2)]
    queued = "SELECT count(*) FROM mailing_recipients WHERE mailing_id = :m AND status = 'queued'"
    try:
        for replica in replicas:
            wait_for(replica.ready, STARTUP, "a replica")
        wait_for(lambda: stack.scalar(queued, m=mailing_id) >= 100, STARTUP, "the hand-over")
        replicas[0].process.send_signal(signal.SIGKILL)
        replicas[0].process.wait()
        at_kill = stack.scalar(queued, m=mailing_id)
        assert at_kill < RECIPIENTS, "the mailing was handed over before the kill"
        replicas[0] = ServiceProcess("campaigns", env, tmp_path, VENV_BIN)  # restarted
        wait_for(replicas[0].ready, STARTUP, "the restarted replica")
        done = "SELECT status FROM mailings WHERE id = :m"
        wait_for(lambda: stack.scalar(done, m=mailing_id) == "done", STARTUP, "the mailing done")
    finally:
        for replica in replicas:
            replica.stop()
    assert stack.scalar(queued, m=mailing_id) == RECIPIENTS
    stack.wait_until("SELECT count(*) FROM outbox", 0, "the relay")
    prefix = f"mailing:{mailing_id}:"
    keys = {
        f"{prefix}{person}"
        for person in stack.scalar(
            "SELECT array_agg(person_id) FROM mailing_recipients WHERE mailing_id = :m",
            m=mailing_id,
        )
    }
    found = stack.events(notification_requests("campaigns"), keys, 10**9, timeout_ms=5000)
    event_ids: dict[str, set[uuid.UUID]] = defaultdict(set)
    for envelope in found:
        event_ids[envelope.payload["idempotency_key"]].add(envelope.event_id)
    assert set(event_ids) == keys
    assert all(len(ids) == 1 for ids in event_ids.values())
