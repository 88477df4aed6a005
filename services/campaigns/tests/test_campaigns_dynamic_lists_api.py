"""A dynamic directory list resolved into an event's participants by the real directory
service, as the caller (ADR 36): the filter evaluated at that moment, the resolution kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest
from campaigns_testkit import Stack, create_event
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import migrate, running
from mailings_testkit import contact, mailing_body

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def directory(
    infra: Infrastructure,
    service_env: dict[str, str],
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    url = migrate("directory", infra, service_env)
    logs = tmp_path_factory.mktemp("directory")
    with running("directory", infra, service_env, url, issuer, logs) as stack:
        yield stack


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
    directory: Stack,
) -> Iterator[Stack]:
    """The campaigns service resolving dynamic lists with the directory above."""
    env = {**service_env, "DIRECTORY_URL": directory.url}
    logs = tmp_path_factory.mktemp("campaigns-dynamic")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def _client(directory: Stack, stack: Stack, headers: dict[str, str], name: str, d: str) -> str:
    created = httpx.post(
        f"{directory.url}/v1/organizations",
        json={"legal_name": name, "status": "client", "directions": [d]},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    org_id = created.json()["id"]
    stack.wait_until(
        "SELECT count(*) FROM organizations WHERE organization_id = :id",
        1,
        "the organization in the campaigns read model",
        id=uuid.UUID(org_id),
    )
    return str(org_id)


def _dynamic_list(directory: Stack, stack: Stack, headers: dict[str, str], d: str) -> str:
    created = httpx.post(
        f"{directory.url}/v1/lists",
        json={
            "name": "Клиенты направления",
            "kind": "dynamic",
            "filter": {"status": ["client"]},
            "directions": [d],
        },
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    list_id = created.json()["id"]
    stack.wait_until(
        "SELECT kind FROM directory_lists WHERE list_id = :id",
        "dynamic",
        "the list in the campaigns read model",
        id=uuid.UUID(list_id),
    )
    return str(list_id)


def test_dynamic_list_resolved_by_the_directory_and_kept(directory: Stack, stack: Stack) -> None:
    d = f"d-{uuid.uuid4().hex[:8]}"
    caller = stack.user([d])
    first = sorted(_client(directory, stack, caller, f"Клиент {n}", d) for n in range(2))
    list_id = _dynamic_list(directory, stack, caller, d)
    event = create_event(stack, [d])
    base = f"/v1/campaigns/{event['id']}/list-resolutions"
    response = stack.call("POST", base, caller, json={"list_id": list_id})
    assert response.status_code == 201, response.text
    resolution = response.json()["resolution"]
    assert resolution["list_kind"] == "dynamic"
    assert (resolution["members"], resolution["added"], resolution["refused"]) == (2, 2, 0)
    added = stack.call("GET", f"/v1/campaigns/{event['id']}/participants", caller).json()
    assert sorted(p["organization_id"] for p in added) == first

    late = _client(directory, stack, caller, "Клиент поздний", d)  # the filter now finds three
    kept = stack.call("GET", f"{base}/{resolution['id']}/members", caller).json()
    assert sorted(m["organization_id"] for m in kept) == first  # kept as it was resolved
    again = stack.call("POST", base, caller, json={"list_id": list_id}).json()
    assert (again["resolution"]["members"], again["resolution"]["added"]) == (3, 1)
    assert {(r["organization_id"], r["reason"]) for r in again["refused"]} == {
        (org, "already_added") for org in first
    }
    assert late not in {r["organization_id"] for r in again["refused"]}

    other = f"d-{uuid.uuid4().hex[:8]}"  # a list of a direction the caller does not work in
    foreign = _dynamic_list(directory, stack, stack.user([other], subject="bob"), other)
    refused = stack.call("POST", base, caller, json={"list_id": foreign})
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["type"] == "unknown_reference"
    assert len(stack.call("GET", base, caller).json()) == 2


def test_a_mailing_to_a_dynamic_list_resolves_it_when_sent_and_keeps_it(
    directory: Stack, stack: Stack
) -> None:
    d = f"d-{uuid.uuid4().hex[:8]}"
    caller = stack.user([d])
    first = [_client(directory, stack, caller, f"Клиент {n}", d) for n in range(2)]
    list_id = _dynamic_list(directory, stack, caller, d)
    persons = []
    for n, org in enumerate(first):
        person = contact(
            stack,
            first="Иван",
            middle="Петрович",
            last=f"Иванов-{n}",
            organization=uuid.UUID(org),
            emails=[f"ivan{n}@example.ru"],
            directions=[d],
        )
        body = {"person_id": str(person), "channel": "email", "granted": True, "source": "form"}
        assert stack.call("POST", "/v1/consents", caller, json=body).status_code == 201
        persons.append(str(person))
    body = mailing_body({"kind": "list", "list_id": list_id}, directions=[d])
    created = stack.call("POST", "/v1/mailings", caller, json=body)
    assert created.status_code == 201, created.text
    base = f"/v1/mailings/{created.json()['id']}"
    assert stack.call("GET", f"{base}/validation", caller).json()["recipients"] == 2

    sent = stack.call("POST", f"{base}/send", caller, if_match=created.headers["ETag"])
    assert sent.status_code == 200, sent.text
    assert sent.json()["audience_resolved_at"] is not None
    late = _client(directory, stack, caller, "Клиент поздний", d)  # the filter now finds three
    late_person = contact(
        stack,
        first="Лев",
        middle=None,
        last="Поздний",
        organization=uuid.UUID(late),
        emails=["lev@example.ru"],
        directions=[d],
    )
    body = {"person_id": str(late_person), "channel": "email", "granted": True, "source": "form"}
    assert stack.call("POST", "/v1/consents", caller, json=body).status_code == 201
    assert stack.call("GET", f"{base}/validation", caller).json()["recipients"] == 2  # kept
    stack.wait_until(
        "SELECT count(*) FROM mailing_recipients WHERE mailing_id = :m",
        2,
        "the recipients resolved by the worker",
        m=uuid.UUID(created.json()["id"]),
    )
    kept = stack.call("GET", f"{base}/recipients", caller).json()
    assert sorted(r["person_id"] for r in kept) == sorted(persons)

    newsletter = mailing_body(
        {"kind": "list", "list_id": list_id},
        directions=[d],
        scheduled_at="2030-01-01T10:00:00+03:00",
        recurrence={"every": "week", "at": "10:00"},
    )
    created = stack.call("POST", "/v1/mailings", caller, json=newsletter)
    assert created.status_code == 201, created.text
    refused = stack.call(
        "POST",
        f"/v1/mailings/{created.json()['id']}/send",
        caller,
        if_match=created.headers["ETag"],
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["errors"][0]["type"] == "dynamic_newsletter"
