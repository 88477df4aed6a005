"""Consent per person and channel: recorded with its source, kept as a trail, published; the
contacts read model follows the persons state topic."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date

from campaigns_testkit import Stack
from clientele_shared.events.catalog import CAMPAIGN_CONSENTS, PERSONS, PERSONS_STATE
from clientele_shared.events.schemas.directory import (
    EmploymentState,
    PersonMerged,
    PersonState,
)
from clientele_testkit.stack import directory_envelope, send_envelopes

NORTH = ["north"]


def test_consent_recorded_read_and_published(stack: Stack) -> None:
    person = stack.person(NORTH)
    north = stack.user(NORTH)
    for channel, granted, source in [
        ("email", True, "form"),
        ("post", True, "import"),
        ("email", False, "call"),
    ]:
        body = {"person_id": str(person), "channel": channel, "granted": granted, "source": source}
        response = stack.call(
            "POST", "/v1/consents", north, json={**body, "note": "Звонок: «не писать»"}
        )
        assert response.status_code == 201, response.text
    seen = stack.call("GET", f"/v1/consents/{person}", north).json()
    assert seen["current"]["email"]["granted"] is False
    assert seen["current"]["email"]["source"] == "call"
    assert seen["current"]["post"]["granted"] is True
    assert seen["current"]["fax"] is None
    assert [e["source"] for e in seen["history"]] == ["call", "import", "form"]
    assert {e["actor_subject"] for e in seen["history"]} == {"alice"}
    events = stack.events(CAMPAIGN_CONSENTS, {str(person)}, 3)
    assert [(e.type, e.payload["channel"], e.payload["granted"]) for e in events] == [
        ("campaigns.consent.changed", "email", True),
        ("campaigns.consent.changed", "post", True),
        ("campaigns.consent.changed", "email", False),
    ]
    assert events[0].directions == ("north",)
    # the ledger is append-only
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=person) == 3


def test_consent_of_an_unseen_or_unknown_person(stack: Stack) -> None:
    south_person = stack.person(["south"])
    north = stack.user(NORTH)
    for person_id in (south_person, uuid.uuid4()):
        body = {"person_id": str(person_id), "channel": "email", "granted": True, "source": "form"}
        response = stack.call("POST", "/v1/consents", north, json=body)
        assert response.status_code == 422
        assert response.headers["content-type"].startswith("application/problem+json")
        assert stack.call("GET", f"/v1/consents/{person_id}", north).status_code == 404
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=south_person) == 0


def test_a_security_officer_reads_consent_but_records_none(stack: Stack) -> None:
    person = stack.person(NORTH)
    officer = stack.user([], roles=["security_officer"], subject="sec")
    body = {"person_id": str(person), "channel": "email", "granted": True, "source": "call"}
    refused = stack.call("POST", "/v1/consents", officer, json=body)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=person) == 0
    assert stack.call("GET", f"/v1/consents/{person}", officer).status_code == 200
    marketer = stack.user(NORTH, roles=["marketer"])
    assert stack.call("POST", "/v1/consents", marketer, json=body).status_code == 201


def test_bad_consent_requests(stack: Stack) -> None:
    person = str(stack.person(NORTH))
    north = stack.user(NORTH)
    good = {"person_id": person, "channel": "email", "granted": True, "source": "form"}
    for bad in [
        {**good, "channel": "pigeon"},
        {**good, "source": "rumour"},
        {**good, "note": "a\x00b"},
        {**good, "note": "я" * 2001},
        {**good, "granted": "maybe"},
        {**good, "extra": 1},
        {k: v for k, v in good.items() if k != "channel"},
    ]:
        response = stack.call("POST", "/v1/consents", north, json=bad)
        assert response.status_code == 422, bad
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=person) == 0


def test_contacts_follow_the_persons_state_topic(stack: Stack) -> None:
    person_id, organization_id = uuid.uuid4(), uuid.uuid4()
    state = PersonState(
        person_id=person_id,
        version=2,
        revision=7,
        last_name="Салтыкова-Щедрина",
        first_name="Анна",
        middle_name="Сергеевна",
        birthday=date(1980, 2, 29),
        emails=[" Anna@Example.RU "],
        attributes={"пол": "Ж", "код": "A-1"},
        directions=NORTH,
        employments=[
            EmploymentState(
                employment_id=uuid.uuid4(),
                organization_id=organization_id,
                version=1,
                position="Главный бухгалтер",
                emails=["buh@romashka.ru"],
            )
        ],
    )
    stack.send(PERSONS_STATE, [directory_envelope("directory.person.state", state, person_id)])
    stack.wait_until(
        "SELECT gender FROM mailing_contacts WHERE person_id = :p",
        "female",
        "the contact",
        p=person_id,
    )
    assert (
        stack.scalar("SELECT emails[1] FROM mailing_contacts WHERE person_id = :p", p=person_id)
        == "anna@example.ru"
    )
    assert (
        stack.scalar(
            "SELECT organization_ids[1] FROM mailing_contacts WHERE person_id = :p", p=person_id
        )
        == organization_id
    )


def test_consent_follows_a_person_merge_and_no_opt_out_is_lost(stack: Stack) -> None:
    """B merged into A: per channel the more restrictive consent stays on A (ADR 64): B's
    withdrawal overrides A's grant, B's grant fills only a channel A never answered, A's own
    withdrawal stays; a redelivered merge records nothing new."""
    survivor, merged = stack.person(NORTH), stack.person(NORTH)
    north = stack.user(NORTH)
    for person, channel, granted, source in [
        (survivor, "email", True, "form"),
        (merged, "email", False, "call"),
        (merged, "post", True, "import"),
        (survivor, "fax", False, "call"),
        (merged, "fax", True, "form"),
    ]:
        body = {"person_id": str(person), "channel": channel, "granted": granted, "source": source}
        assert stack.call("POST", "/v1/consents", north, json=body).status_code == 201

    def merge() -> None:
        payload = PersonMerged(
            survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
        )
        envelope = directory_envelope("directory.person.merged", payload, survivor)
        asyncio.run(send_envelopes(stack.bootstrap, PERSONS, [envelope]))
        stack.wait_until(
            "SELECT count(*) > 0 FROM inbox WHERE event_id = :id",
            True,
            "the merge handled",
            id=envelope.event_id,
        )

    merge()
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=survivor) == 4
    seen = stack.call("GET", f"/v1/consents/{survivor}", north).json()
    current = {
        channel: (entry["granted"], entry["source"]) for channel, entry in seen["current"].items()
    }
    assert current == {"email": (False, "call"), "post": (True, "import"), "fax": (False, "call")}
    carried = [e for e in seen["history"] if e["note"] and str(merged) in e["note"]]
    assert sorted(e["channel"] for e in carried) == ["email", "post"]
    events = stack.events(CAMPAIGN_CONSENTS, {str(survivor)}, 4)
    assert {(e.payload["channel"], e.payload["granted"]) for e in events[2:]} == {
        ("email", False),
        ("post", True),
    }
    merge()  # the same merge again (a redelivery): nothing new
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=survivor) == 4
