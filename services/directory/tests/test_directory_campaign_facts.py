"""Campaigns' consent changes and hard bounces seen by the directory (over real Kafka): the
person's card shows the newest consent per mailing channel with its source and time, and the
addresses a mailing bounced on, read-only, each audited on the person as done by campaigns;
a reviewed address's mark cleared by a user."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import CAMPAIGN_CONSENTS, REGISTRY
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.schemas.mailings import (
    ADDRESS_BOUNCED,
    CONSENT_CHANGED,
    AddressBounced,
    ConsentChanged,
)
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess
from clientele_testkit.stack import send_envelopes
from directory_testkit import bearer, fresh_direction, problem, sales

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


@pytest.fixture
def send(infra: Infrastructure) -> Callable[..., Any]:
    async def publish(*envelopes: Envelope) -> None:
        await send_envelopes(infra.kafka_bootstrap_servers, CAMPAIGN_CONSENTS, envelopes)

    return publish


def _envelope(event_type: str, payload: Payload, person: str, by: str = "ivanova") -> Envelope:
    return Envelope(
        type=event_type,
        schema_version=REGISTRY.spec_for(event_type, payload).version,
        producer="campaigns",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject=by, kind="user"),
        aggregate_id=person,
        payload=payload.model_dump(mode="json"),
    )


def _consent(
    person: str, entry: int, channel: str, granted: bool, source: str, **more: Any
) -> Envelope:
    payload = ConsentChanged(
        consent_id=entry,
        person_id=uuid.UUID(person),
        channel=channel,  # type: ignore[arg-type]
        granted=granted,
        source=source,  # type: ignore[arg-type]
        recorded_at=T0 + timedelta(minutes=entry),
        **more,
    )
    return _envelope(CONSENT_CHANGED, payload, person)


def _bounce(person: str, email: str, mailing: uuid.UUID, reason: str | None) -> Envelope:
    payload = AddressBounced(
        person_id=uuid.UUID(person),
        email=email,
        mailing_id=mailing,
        reason=reason,
        bounced_at=T0,
    )
    return _envelope(ADDRESS_BOUNCED, payload, person, by="notifier")


async def _card_until(
    client: httpx.AsyncClient, headers: dict[str, str], person: str, seen: Callable[[Any], bool]
) -> dict[str, Any]:
    """The person's card once it shows what ``seen`` waits for (events arrive asynchronously)."""
    for _ in range(300):
        card: dict[str, Any] = (await client.get(f"/v1/persons/{person}", headers=headers)).json()
        if seen(card):
            return card
        await asyncio.sleep(0.1)
    raise AssertionError(f"the card never showed it: {card}")


async def _new_person(client: httpx.AsyncClient, headers: dict[str, str], direction: str) -> str:
    body = {
        "last_name": "Салтыкова",
        "first_name": "Анна",
        "emails": ["anna@romashka.ru", "a.s@romashka.ru"],
        "directions": [direction],
    }
    response = await client.post("/v1/persons", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_the_card_shows_the_newest_consent_per_channel_audited_as_campaigns(
    client: httpx.AsyncClient, issuer: TokenIssuer, send: Callable[..., Any]
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    person = await _new_person(client, me, direction)
    fresh = (await client.get(f"/v1/persons/{person}", headers=me)).json()
    assert (fresh["mailing_consent"], fresh["addresses_for_review"]) == ({}, [])

    mailing = uuid.uuid4()
    withdrawn = _consent(person, 12, "email", False, "unsubscribe", mailing_id=mailing)
    await send(
        _consent(str(uuid.uuid4()), 9, "email", True, "form"),  # a person the directory lacks
        _consent(person, 10, "email", True, "form", note="анкета на выставке"),
        withdrawn,
        withdrawn,  # redelivered
        _consent(person, 11, "email", True, "call"),  # older than what is kept: nothing
        _consent(person, 13, "post", True, "import"),
    )
    card = await _card_until(client, me, person, lambda c: "post" in c["mailing_consent"])
    assert card["mailing_consent"] == {
        "email": {
            "granted": False,
            "source": "unsubscribe",
            "recorded_at": (T0 + timedelta(minutes=12)).isoformat().replace("+00:00", "Z"),
            "mailing_id": str(mailing),
        },
        "post": {
            "granted": True,
            "source": "import",
            "recorded_at": (T0 + timedelta(minutes=13)).isoformat().replace("+00:00", "Z"),
            "mailing_id": None,
        },
    }
    assert card["version"] == 1  # campaigns' facts are no edit of the person

    audit = (await client.get(f"/v1/persons/{person}/audit", headers=me)).json()
    recorded = [e for e in audit if e["action"] == "mailing_consent_recorded"]
    assert [(e["actor_subject"], e["actor_kind"]) for e in recorded] == [
        ("campaigns", "service")
    ] * 3
    assert [list(e["changes"]) for e in recorded] == [
        ["mailing_consent.email"],
        ["mailing_consent.email"],
        ["mailing_consent.post"],
    ]
    change = recorded[1]["changes"]["mailing_consent.email"]
    assert (change["old"]["granted"], change["new"]["granted"]) == (True, False)
    assert recorded[1]["note"] == "campaigns' consent entry 12, recorded by ivanova"

    # read-only: the consent summary is no field one may write
    current = await client.get(f"/v1/persons/{person}", headers=me)
    refused = await client.patch(
        f"/v1/persons/{person}",
        json={"mailing_consent": {"email": {"granted": True}}},
        headers=me | {"If-Match": current.headers["etag"]},
    )
    problem(refused, 422)
    other = sales(issuer, fresh_direction())
    problem(await client.get(f"/v1/persons/{person}", headers=other), 404)


async def test_a_hard_bounce_marks_the_address_for_review_while_the_person_has_it(
    client: httpx.AsyncClient, issuer: TokenIssuer, send: Callable[..., Any]
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    person = await _new_person(client, me, direction)
    mailing = uuid.uuid4()
    bounce = _bounce(person, "anna@romashka.ru", mailing, "550 5.1.1 no such user")
    await send(bounce, bounce)
    card = await _card_until(client, me, person, lambda c: bool(c["addresses_for_review"]))
    assert card["addresses_for_review"] == [
        {
            "email": "anna@romashka.ru",
            "mailing_id": str(mailing),
            "reason": "550 5.1.1 no such user",
            "bounced_at": T0.isoformat().replace("+00:00", "Z"),
        }
    ]
    audit = (await client.get(f"/v1/persons/{person}/audit", headers=me)).json()
    marks = [e for e in audit if e["action"] == "address_marked_for_review"]
    assert len(marks) == 1
    assert marks[0]["actor_subject"] == "campaigns"
    assert marks[0]["changes"] == {"address_for_review": {"old": None, "new": "anna@romashka.ru"}}

    # a reviewed address: its mark cleared by who sees the person (any case), audited
    other = _bounce(person, "a.s@romashka.ru", mailing, None)
    await send(other)
    await _card_until(client, me, person, lambda c: len(c["addresses_for_review"]) == 2)
    url = f"/v1/persons/{person}/addresses-for-review"
    south = sales(issuer, fresh_direction())
    problem(await client.delete(url, params={"email": "a.s@romashka.ru"}, headers=south), 404)
    problem(await client.delete(url, params={"email": "A.S@romashka.ru\x00"}, headers=me), 422)
    problem(await client.delete(url, headers=me), 422)
    # a security officer sees every card but writes none: no clearing, no edit (403)
    officer = bearer(issuer, "sec", roles=["security_officer"])
    assert (await client.get(f"/v1/persons/{person}", headers=officer)).status_code == 200
    refused = await client.delete(url, params={"email": "a.s@romashka.ru"}, headers=officer)
    assert problem(refused, 403)["type"].endswith("/forbidden")
    edit = await client.patch(
        f"/v1/persons/{person}",
        json={"first_name": "Мария"},
        headers=officer | {"If-Match": 'W/"1"'},
    )
    problem(edit, 403)
    for path in (f"/v1/persons/{person}/restore", f"/v1/persons/{person}/employments"):
        problem(await client.post(path, json={}, headers=officer | {"If-Match": 'W/"1"'}), 403)
    still = (await client.get(f"/v1/persons/{person}", headers=me)).json()
    assert (len(still["addresses_for_review"]), still["first_name"]) == (2, "Анна")
    # a role that writes, in the person's direction, may clear it
    marketer = bearer(issuer, "mia", roles=["marketer"], directions=[direction])
    cleared = await client.delete(url, params={"email": "A.S@Romashka.ru"}, headers=marketer)
    assert cleared.status_code == 204, cleared.text
    problem(await client.delete(url, params={"email": "a.s@romashka.ru"}, headers=me), 404)
    card = (await client.get(f"/v1/persons/{person}", headers=me)).json()
    assert [r["email"] for r in card["addresses_for_review"]] == ["anna@romashka.ru"]
    assert card["version"] == 1
    audit = (await client.get(f"/v1/persons/{person}/audit", headers=me)).json()
    [done] = [e for e in audit if e["action"] == "address_review_cleared"]
    assert (done["actor_subject"], done["actor_kind"]) == ("mia", "user")
    assert done["changes"] == {"address_for_review": {"old": "a.s@romashka.ru", "new": None}}

    # the address replaced on the card: nothing left to review
    current = await client.get(f"/v1/persons/{person}", headers=me)
    changed = await client.patch(
        f"/v1/persons/{person}",
        json={"emails": ["anna.s@romashka.ru", "a.s@romashka.ru"]},
        headers=me | {"If-Match": current.headers["etag"]},
    )
    assert changed.status_code == 200, changed.text
    card = (await client.get(f"/v1/persons/{person}", headers=me)).json()
    assert card["addresses_for_review"] == []


async def test_a_merged_persons_bounce_marks_apply_to_the_survivor(
    client: httpx.AsyncClient, issuer: TokenIssuer, send: Callable[..., Any]
) -> None:
    """B merged into A: the addresses a mailing bounced on for B are marked on A too (the later
    bounce kept where both have one), audited on A, in the merge's transaction (ADR 64)."""
    direction = fresh_direction()
    me = sales(issuer, direction)
    survivor, merged = (
        await _new_person(client, me, direction),
        await _new_person(client, me, direction),
    )
    mailing = uuid.uuid4()
    await send(_bounce(merged, "anna@romashka.ru", mailing, "550 5.1.1 no such user"))
    await _card_until(client, me, merged, lambda c: bool(c["addresses_for_review"]))
    assert (await client.get(f"/v1/persons/{survivor}", headers=me)).json()[
        "addresses_for_review"
    ] == []

    response = await client.post(
        f"/v1/persons/{survivor}/merge",
        json={"other_id": merged, "other_version": 1},
        headers=me | {"If-Match": 'W/"1"'},
    )
    assert response.status_code == 200, response.text
    card = (await client.get(f"/v1/persons/{survivor}", headers=me)).json()
    assert card["addresses_for_review"] == [
        {
            "email": "anna@romashka.ru",
            "mailing_id": str(mailing),
            "reason": "550 5.1.1 no such user",
            "bounced_at": T0.isoformat().replace("+00:00", "Z"),
        }
    ]
    audit = (await client.get(f"/v1/persons/{survivor}/audit", headers=me)).json()
    [mark] = [e for e in audit if e["action"] == "address_marked_for_review"]
    assert mark["changes"] == {"address_for_review": {"old": None, "new": "anna@romashka.ru"}}
    assert merged in mark["note"]
