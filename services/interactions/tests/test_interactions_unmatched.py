"""Unmatched addresses of captured mail: kept as records, listed by direction, resolved by
linking a person (who joins the interaction) or dismissing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import httpx
import pytest
from clientele_shared.events.catalog import PERSONS
from clientele_shared.events.schemas.directory import PersonCreated, PersonDeleted
from clientele_testkit.processes import wait_for
from interactions_testkit import Stack, bearer, directory_envelope, publish

pytestmark = pytest.mark.integration


def _eml(sender: str, cc: str) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "Alice <alice@ourco.example>"
    message["Cc"] = cc
    message["Subject"] = "Коммерческое предложение"
    message["Date"] = format_datetime(datetime(2026, 3, 1, 9, 30, tzinfo=UTC))
    message["Message-ID"] = make_msgid(domain="client.example")
    message.set_content("Добрый день!")
    return message.as_bytes()


def _person(stack: Stack, direction: str, **fields: object) -> uuid.UUID:
    person = uuid.uuid4()
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.created",
            PersonCreated(
                person_id=person,
                last_name="Новиков",
                **{"directions": [direction], **fields},  # type: ignore[arg-type]
            ),
            person,
            [direction],
        ),
    )
    return person


def test_unknown_addresses_are_kept_and_resolved(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    tag = uuid.uuid4().hex[:8]
    sender, cc = f"ivan-{tag}@client.example", f"list-{tag}@client.example"
    message = _eml(f"Иван Новиков <{sender}>", f"News <{cc}>")
    captured = httpx.post(
        f"{stack.url}/v1/interactions/email",
        files={"file": ("offer.eml", message, "message/rfc822")},
        data={"organization_id": str(org)},
        headers=sales,
    )
    assert captured.status_code == 201, captured.text
    body = captured.json()
    interaction = body["interaction"]
    assert body["unknown_addresses"] == [sender, cc]
    records = {item["address"]: item for item in body["unmatched"]}
    assert records[sender]["display_name"] == "Иван Новиков"
    assert records[sender]["role"] == "from"
    assert records[cc]["role"] == "cc"
    assert {r["interaction_id"] for r in records.values()} == {interaction["id"]}
    assert {r["mailbox"] for r in records.values()} == {None}

    url = f"{stack.url}/v1/unmatched-addresses"
    listed = httpx.get(url, params={"organization_id": str(org)}, headers=sales).json()
    assert [item["address"] for item in listed] == [sender, cc]
    assert {item["organization_id"] for item in listed} == {str(org)}
    assert {item["subject"] for item in listed} == {"Коммерческое предложение"}

    # another direction sees none of it and resolves nothing
    stranger = bearer(stack.issuer, "bob", directions=["elsewhere"])
    assert httpx.get(url, params={"organization_id": str(org)}, headers=stranger).json() == []
    assert httpx.get(f"{url}/{records[sender]['id']}", headers=stranger).status_code == 404
    person = _person(stack, direction, emails=[sender])
    link = {"person_id": str(person)}
    assert (
        httpx.post(f"{url}/{records[sender]['id']}/link", json=link, headers=stranger).status_code
        == 404
    )
    assert httpx.post(f"{url}/{records[cc]['id']}/dismiss", headers=stranger).status_code == 404
    officer = bearer(stack.issuer, "sec", roles=["security_officer"])
    assert len(httpx.get(url, params={"organization_id": str(org)}, headers=officer).json()) == 2
    assert (
        httpx.post(f"{url}/{records[sender]['id']}/link", json=link, headers=officer).status_code
        == 403
    )

    # a person the directory does not know (yet) cannot be linked
    unknown = httpx.post(
        f"{url}/{records[sender]['id']}/link",
        json={"person_id": str(uuid.uuid4())},
        headers=sales,
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["location"] == ["body", "person_id"]

    wait_for(
        lambda: (
            httpx.post(f"{url}/{records[sender]['id']}/link", json=link, headers=sales).status_code
            == 200
        ),
        60,
        "the person to arrive and be linked",
    )
    after = httpx.get(f"{stack.url}/v1/interactions/{interaction['id']}", headers=sales)
    assert after.json()["person_ids"] == [str(person)]
    assert after.headers["etag"] == 'W/"2"'
    trail = httpx.get(
        f"{stack.url}/v1/interactions/{interaction['id']}/audit", headers=sales
    ).json()
    assert trail[-1]["action"] == "participant_linked"
    assert trail[-1]["note"] == f"{sender} is {person}"
    again = httpx.post(f"{url}/{records[sender]['id']}/link", json=link, headers=sales)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"

    dismissed = httpx.post(f"{url}/{records[cc]['id']}/dismiss", headers=sales)
    assert dismissed.status_code == 200
    assert dismissed.json()["status"] == "dismissed"
    assert httpx.get(url, params={"organization_id": str(org)}, headers=sales).json() == []
    resolved = httpx.get(
        url, params={"organization_id": str(org), "status": "linked"}, headers=sales
    ).json()
    assert [(r["address"], r["person_id"], r["resolved_by"]) for r in resolved] == [
        (sender, str(person), "alice")
    ]
    summary = httpx.get(f"{stack.url}/v1/clients/{org}/summary", headers=sales).json()
    assert summary["last_interactions"][0]["person_ids"] == [str(person)]


def test_a_deleted_person_is_not_linked(stack: Stack, direction: str) -> None:
    org = stack.client([direction])
    sales = bearer(stack.issuer, "alice", directions=[direction])
    tag = uuid.uuid4().hex[:8]
    captured = httpx.post(
        f"{stack.url}/v1/interactions/email",
        files={
            "file": (
                "a.eml",
                _eml(f"x-{tag}@client.example", f"y-{tag}@client.example"),
                "message/rfc822",
            )
        },
        data={"organization_id": str(org)},
        headers=sales,
    ).json()
    person = _person(stack, direction)
    publish(
        stack.bootstrap,
        PERSONS,
        directory_envelope(
            "directory.person.deleted", PersonDeleted(person_id=person, version=2), person
        ),
    )
    item = captured["unmatched"][0]["id"]
    url = f"{stack.url}/v1/unmatched-addresses/{item}/link"
    # linked before the deletion arrived, the address would be resolved: wait for it first
    wait_for(
        lambda: stack.scalar("SELECT deleted FROM persons WHERE person_id = :id", id=person),
        60,
        "the deletion to arrive",
    )
    refused = httpx.post(url, json={"person_id": str(person)}, headers=sales)
    assert refused.status_code == 422, refused.text
    assert "deleted" in refused.text
    assert (
        httpx.get(f"{stack.url}/v1/unmatched-addresses/{item}", headers=sales).json()["status"]
        == "open"
    )
