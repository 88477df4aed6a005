"""The unwanted counterparty register over real HTTP: who keeps it, flags in reads and events."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ORGANIZATIONS, PERSONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    TopicTail,
    admin,
    bearer,
    fresh_direction,
    fresh_domain,
    fresh_inn,
    problem,
    sales,
)

pytestmark = pytest.mark.integration
WHY = {"reason": "Не платит по счетам", "decided_by": "Совет директоров, протокол 12"}


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


def officer(issuer: TokenIssuer) -> dict[str, str]:
    return bearer(issuer, "sec-officer", roles=["security_officer"])


async def _created(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    response = await client.post(path, json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _org(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    return await _created(client, "/v1/organizations", headers, **fields)


async def _person(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    return await _created(client, "/v1/persons", headers, **fields)


async def _entry(
    client: httpx.AsyncClient, headers: dict[str, str], **target: Any
) -> dict[str, Any]:
    response = await client.post("/v1/unwanted", json=WHY | target, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_only_admins_and_security_officers_keep_the_register(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    head = bearer(issuer, roles=["head_of_sales"], directions=[direction])
    inn = fresh_inn()
    for who in (me, head):
        problem(await client.post("/v1/unwanted", json=WHY | {"inn": inn}, headers=who), 403)
        problem(await client.get("/v1/unwanted", headers=who), 403)
    entry = await _entry(client, officer(issuer), inn=inn)
    assert entry["basis"] == "inn"
    assert entry["created_by"] == "sec-officer"
    problem(await client.get(f"/v1/unwanted/{entry['id']}", headers=me), 403)
    problem(await client.delete(f"/v1/unwanted/{entry['id']}", headers=me), 403)
    # a second active entry for the same target is a conflict
    problem(await client.post("/v1/unwanted", json=WHY | {"inn": inn}, headers=admin(issuer)), 409)
    for bad in (
        {"inn": inn, "email_domain": "x.example"},
        {"inn": "7707083894"},
        {"email_domain": "no domain"},
        {"organization_id": str(uuid.uuid4())},
        {"person_id": str(uuid.uuid4())},
        {"inn": fresh_inn(), "reason": "  "},
        {"inn": fresh_inn(), "reason": "x" * 4001},
    ):
        problem(await client.post("/v1/unwanted", json={**WHY, **bad}, headers=admin(issuer)), 422)
    listed = (await client.get("/v1/unwanted?basis=inn", headers=officer(issuer))).json()
    assert entry["id"] in {e["id"] for e in listed}
    removed = await client.delete(
        f"/v1/unwanted/{entry['id']}", params={"reason": "ошибка"}, headers=officer(issuer)
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["removal_reason"] == "ошибка"
    problem(await client.delete(f"/v1/unwanted/{entry['id']}", headers=officer(issuer)), 409)
    problem(await client.get(f"/v1/unwanted/{entry['id']}/audit", headers=me), 403)
    trail = (await client.get(f"/v1/unwanted/{entry['id']}/audit", headers=officer(issuer))).json()
    assert [(e["action"], e["actor_subject"], e["note"]) for e in trail] == [
        ("created", "sec-officer", WHY["reason"]),
        ("removed", "sec-officer", "ошибка"),
    ]
    assert trail[0]["changes"]["inn"] == {"old": None, "new": inn}
    assert entry["id"] not in {
        e["id"] for e in (await client.get("/v1/unwanted", headers=officer(issuer))).json()
    }


async def test_an_inn_listed_before_the_organization_exists_blocks_it(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(ORGANIZATIONS).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    inn, other_inn = fresh_inn(), fresh_inn()
    entry = await _entry(client, officer(issuer), inn=inn)
    warned = (await client.get("/v1/unwanted/check", params={"inn": inn}, headers=me)).json()
    assert warned["blocked"] is True
    assert warned["matches"][0]["reason"] == WHY["reason"]
    clean = await client.get("/v1/unwanted/check", params={"inn": other_inn}, headers=me)
    assert clean.json() == {"blocked": False, "matches": []}
    problem(await client.get("/v1/unwanted/check", params={"inn": "123"}, headers=me), 422)
    problem(await client.get("/v1/unwanted/check", headers=me), 422)

    org = await _org(client, me, legal_name="Должник", inn=inn, directions=[direction])
    assert org["blocked"] is True
    url = f"/v1/organizations/{org['id']}"
    assert (await client.get(url, headers=me)).json()["blocked"] is True
    assert (await client.get("/v1/organizations", headers=me)).json()[0]["blocked"] is True
    # changing the INN unblocks it, changing it back blocks it again
    away = await client.patch(url, json={"inn": other_inn}, headers=me | {"If-Match": 'W/"1"'})
    assert away.json()["blocked"] is False
    back = await client.patch(url, json={"inn": inn}, headers=me | {"If-Match": 'W/"2"'})
    assert back.json()["blocked"] is True

    events = await topic.events_of(org["id"], 6)
    assert [(e.type, e.payload.get("blocked")) for e in events] == [
        ("directory.organization.created", True),
        ("directory.organization.blocked", None),
        ("directory.organization.updated", False),
        ("directory.organization.unblocked", None),
        ("directory.organization.updated", True),
        ("directory.organization.blocked", None),
    ]
    blocked = events[1].payload
    assert (blocked["basis"], blocked["entry_id"], blocked["reason"], blocked["decided_by"]) == (
        "inn",
        entry["id"],
        WHY["reason"],
        WHY["decided_by"],
    )
    trail = (await client.get(f"{url}/audit", headers=me)).json()
    assert [e["action"] for e in trail] == [
        "created",
        "blocked",
        "updated",
        "unblocked",
        "updated",
        "blocked",
    ]
    assert trail[1]["note"] == WHY["reason"]
    assert (await client.delete(f"/v1/unwanted/{entry['id']}", headers=admin(issuer))).is_success
    # the removed entry named the organization by its INN: it is announced unblocked
    removed = (await topic.events_of(org["id"], 7))[6]
    assert (removed.type, removed.payload["entry_id"]) == (
        "directory.organization.unblocked",
        entry["id"],
    )


async def test_a_check_by_e_mail_finds_the_listed_records_holding_it_in_any_case(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    persons_topic = await tail(PERSONS).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    domain = fresh_domain()
    org = await _org(
        client, me, legal_name="Почтовая", emails=[f"Ivan.Petrov@{domain}"], directions=[direction]
    )
    person = await _person(
        client,
        me,
        last_name="Сидорова",
        emails=[f"Olga.Sidorova@{domain}"],
        directions=[direction],
    )
    entries = [await _entry(client, officer(issuer), organization_id=org["id"])]
    try:
        entries.append(await _entry(client, officer(issuer), person_id=person["id"]))
        by_org, by_person = entries
        # the entry named the person by id: he is announced blocked
        await persons_topic.wait_for(
            lambda e: e.aggregate_id == person["id"] and e.type == "directory.person.blocked"
        )
        for email, entry, basis in (
            (f"ivan.petrov@{domain.upper()}", by_org, "organization"),
            (f"OLGA.SIDOROVA@{domain}", by_person, "person"),
        ):
            check = await client.get("/v1/unwanted/check", params={"email": email}, headers=me)
            assert check.status_code == 200, check.text
            found = [(m["entry_id"], m["basis"]) for m in check.json()["matches"]]
            assert found == [(entry["id"], basis)], email
        other = f"ivan.petrova@{domain}"
        clean = await client.get("/v1/unwanted/check", params={"email": other}, headers=me)
        assert clean.status_code == 200, clean.text
        assert clean.json() == {"blocked": False, "matches": []}
    finally:
        for entry in entries:
            await client.delete(f"/v1/unwanted/{entry['id']}", headers=admin(issuer))


async def test_marking_an_organization_and_a_domain(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    orgs_topic, persons_topic = await tail(ORGANIZATIONS).start(), await tail(PERSONS).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    domain = fresh_domain()
    first = await _org(client, me, legal_name="Первая", directions=[direction])
    second = await _org(
        client, me, legal_name="Вторая", emails=[f"info@{domain}"], directions=[direction]
    )
    person = await _person(
        client, me, last_name="Сидоров", emails=[f"sid@{domain.upper()}"], directions=[direction]
    )
    assert person["blocked"] is False

    by_org = await _entry(client, officer(issuer), organization_id=first["id"])
    by_domain = await _entry(client, officer(issuer), email_domain=f"@{domain}")
    assert by_domain["email_domain"] == domain
    flags = {
        o["id"]: o["blocked"] for o in (await client.get("/v1/organizations", headers=me)).json()
    }
    assert flags == {first["id"]: True, second["id"]: True}
    assert (await client.get(f"/v1/persons/{person['id']}", headers=me)).json()["blocked"] is True
    check = await client.get("/v1/unwanted/check", params={"email": f"new@{domain}"}, headers=me)
    assert [m["basis"] for m in check.json()["matches"]] == ["email_domain"]

    for org, entry in ((first, by_org), (second, by_domain)):
        event = await orgs_topic.wait_for(
            lambda e, org_id=org["id"]: (
                e.aggregate_id == org_id and e.type == "directory.organization.blocked"
            )
        )
        assert event.payload["entry_id"] == entry["id"]
        assert event.directions == (direction,)
    person_event = await persons_topic.wait_for(
        lambda e: e.aggregate_id == person["id"] and e.type == "directory.person.blocked"
    )
    assert person_event.payload["basis"] == "email_domain"

    await client.delete(f"/v1/unwanted/{by_domain['id']}", headers=admin(issuer))
    unblocked = await orgs_topic.wait_for(
        lambda e: e.aggregate_id == second["id"] and e.type == "directory.organization.unblocked"
    )
    assert unblocked.payload["entry_id"] == by_domain["id"]
    await persons_topic.wait_for(
        lambda e: e.aggregate_id == person["id"] and e.type == "directory.person.unblocked"
    )
    flags = {
        o["id"]: o["blocked"] for o in (await client.get("/v1/organizations", headers=me)).json()
    }
    assert flags == {first["id"]: True, second["id"]: False}
    # the register itself is audited under its entries
    await client.delete(f"/v1/unwanted/{by_org['id']}", headers=admin(issuer))
    assert not (await client.get(f"/v1/organizations/{first['id']}", headers=me)).json()["blocked"]
