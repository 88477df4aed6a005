"""Custom attributes over real HTTP: definitions by administrators, values validated on
organizations and persons, changes in events, filters in search, archiving keeps data."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ORGANIZATIONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, admin, fresh_direction, problem, sales

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


def _key(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:8]}"


async def _define(client: httpx.AsyncClient, issuer: TokenIssuer, **fields: Any) -> dict[str, Any]:
    body = {"entity_kind": "organization", "label": fields.get("key", "x"), **fields}
    response = await client.post("/v1/attributes", json=body, headers=admin(issuer))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _archive(
    client: httpx.AsyncClient, issuer: TokenIssuer, definition: dict[str, Any]
) -> None:
    current = await client.get(f"/v1/attributes/{definition['id']}", headers=admin(issuer))
    response = await client.delete(
        f"/v1/attributes/{definition['id']}",
        headers={**admin(issuer), "If-Match": current.headers["etag"]},
    )
    assert response.status_code == 200, response.text


async def test_definitions_are_written_by_administrators_only(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    body = {"entity_kind": "organization", "key": _key("k"), "label": "K", "type": "string"}
    problem(await client.post("/v1/attributes", json=body, headers=sales(issuer, "x")), 403)
    problem(
        await client.post("/v1/attributes", json={**body, "type": "enum"}, headers=admin(issuer)),
        422,
    )
    created = await _define(client, issuer, key=body["key"], type="string")
    problem(await client.post("/v1/attributes", json=body, headers=admin(issuer)), 409)
    listed = await client.get("/v1/attributes?entity_kind=organization", headers=sales(issuer))
    assert body["key"] in [d["key"] for d in listed.json()]
    url = f"/v1/attributes/{created['id']}"
    problem(await client.patch(url, json={"label": "L"}, headers=admin(issuer)), 428)
    problem(
        await client.patch(
            url, json={"label": "L"}, headers={**admin(issuer), "If-Match": 'W/"9"'}
        ),
        412,
    )
    await _archive(client, issuer, created)
    listed = await client.get("/v1/attributes", headers=sales(issuer))
    assert body["key"] not in [d["key"] for d in listed.json()]
    audit = await client.get(f"{url}/audit", headers=admin(issuer))
    assert [e["action"] for e in audit.json()] == ["created", "archived"]


async def test_values_are_validated_published_filtered_and_kept_when_archived(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    tail: Callable[[str], TopicTail],
) -> None:
    north, south = fresh_direction(), fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, south)
    region, channels, budget, size, since, vip, parent = (
        _key(n) for n in ("region", "channels", "budget", "size", "since", "vip", "parent")
    )
    defs = [
        await _define(client, issuer, key=region, type="enum", options=["Север", "Юг"]),
        await _define(client, issuer, key=channels, type="multi_enum", options=["email", "visit"]),
        await _define(client, issuer, key=budget, type="money"),
        await _define(client, issuer, key=size, type="number"),
        await _define(client, issuer, key=since, type="date"),
        await _define(client, issuer, key=vip, type="bool"),
        await _define(client, issuer, key=parent, type="reference", reference_kind="organization"),
    ]
    required = await _define(client, issuer, key=_key("must"), type="string", required=True)
    try:
        missing = await client.post(
            "/v1/organizations", json={"legal_name": "Без", "directions": [north]}, headers=mine
        )
        assert problem(missing, 422)["errors"][0]["location"] == [
            "body",
            "attributes",
            required["key"],
        ]
    finally:
        await _archive(client, issuer, required)

    other = await client.post(
        "/v1/organizations", json={"legal_name": "Чужая", "directions": [south]}, headers=theirs
    )
    bad = await client.post(
        "/v1/organizations",
        json={
            "legal_name": "Плохая",
            "directions": [north],
            "attributes": {region: "Запад", "nope": 1, size: "много", parent: other.json()["id"]},
        },
        headers=mine,
    )
    errors = {tuple(e["location"]): e["message"] for e in problem(bad, 422)["errors"]}
    assert "unknown option 'Запад'" in errors[("body", "attributes", region)]
    assert errors[("body", "attributes", "nope")] == "no such attribute"
    assert ("body", "attributes", size) in errors
    # a reference to another direction's organization is not confirmed (and refused)
    bad = await client.post(
        "/v1/organizations",
        json={
            "legal_name": "Ссылка",
            "directions": [north],
            "attributes": {parent: other.json()["id"]},
        },
        headers=mine,
    )
    assert problem(bad, 422)["errors"][0]["message"] == "no such organization"

    created = []
    for name, attrs in (
        (
            "Альфа",
            {
                region: "север",
                channels: "email; visit",
                budget: "1 500,50 RUB",
                size: 10,
                since: "01.02.2024",
                vip: "да",
            },
        ),
        (
            "Бета",
            {
                region: "Юг",
                channels: ["visit"],
                budget: {"amount": 99, "currency": "USD"},
                size: "250",
            },
        ),
        ("Гамма", {}),
    ):
        response = await client.post(
            "/v1/organizations",
            json={"legal_name": name, "directions": [north], "attributes": attrs},
            headers=mine,
        )
        assert response.status_code == 201, response.text
        created.append(response.json())
    alpha = created[0]
    assert alpha["attributes"] == {
        budget: {"amount": "1500.5", "currency": "RUB"},
        channels: ["email", "visit"],
        region: "Север",
        since: "2024-02-01",
        size: 10,
        vip: True,
    }

    async def names(attributes: dict[str, Any], headers: dict[str, str] = mine) -> list[str]:
        response = await client.post(
            "/v1/organizations/search", json={"filter": {"attributes": attributes}}, headers=headers
        )
        assert response.status_code == 200, response.text
        return [item["legal_name"] for item in response.json()["items"]]

    assert await names({region: {"eq": "юг"}}) == ["Бета"]
    assert await names({size: {"gte": 100}}) == ["Бета"]
    assert await names({size: {"gte": "5", "lte": 10}}) == ["Альфа"]
    assert await names({channels: {"contains": "email"}}) == ["Альфа"]
    assert await names({channels: {"in": ["email", "visit"]}}) == ["Альфа", "Бета"]
    assert await names({budget: {"gte": "1000 RUB"}}) == ["Альфа"]
    assert await names({budget: {"lte": 100}}) == ["Бета"]
    assert await names({since: {"gte": "2024-01-01"}, vip: {"eq": True}}) == ["Альфа"]
    assert await names({region: {"exists": False}}) == ["Гамма"]
    assert await names({region: {"eq": "Юг"}}, theirs) == []
    for wrong in ({"nope": {"eq": 1}}, {vip: {"gte": True}}, {region: {"eq": "Запад"}}):
        response = await client.post(
            "/v1/organizations/search", json={"filter": {"attributes": wrong}}, headers=mine
        )
        problem(response, 422)

    organizations = await tail(ORGANIZATIONS).start()
    url = f"/v1/organizations/{alpha['id']}"
    patched = await client.patch(
        url,
        json={"attributes": {size: 11, vip: None, parent: created[1]["id"]}},
        headers={**mine, "If-Match": 'W/"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert vip not in patched.json()["attributes"]
    event = await organizations.wait_for(
        lambda e: e.type == "directory.organization.updated" and e.aggregate_id == alpha["id"]
    )
    assert event.payload["changes"][f"attributes.{size}"] == {"old": 10, "new": 11}
    assert event.payload["changes"][f"attributes.{vip}"] == {"old": True, "new": None}
    assert event.payload["changes"][f"attributes.{parent}"]["new"] == created[1]["id"]
    audit = await client.get(f"{url}/audit", headers=mine)
    assert f"attributes.{size}" in audit.json()[-1]["changes"]

    # archiving keeps the values (read and filtered) and refuses new ones
    await _archive(client, issuer, defs[3])
    read = await client.get(url, headers=mine)
    assert read.json()["attributes"][size] == 11
    assert await names({size: {"eq": 11}}) == ["Альфа"]
    refused = await client.patch(
        url, json={"attributes": {size: 12}}, headers={**mine, "If-Match": read.headers["etag"]}
    )
    assert problem(refused, 422)["errors"][0]["type"] == "archived"
    for definition in defs:
        if definition is not defs[3]:
            await _archive(client, issuer, definition)


async def test_persons_carry_their_own_attributes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    mine = sales(issuer, north)
    hobby = await _define(
        client, issuer, entity_kind="person", key=_key("hobby"), type="enum", options=["Рыбалка"]
    )
    try:
        person = await client.post(
            "/v1/persons",
            json={
                "last_name": "Петров",
                "directions": [north],
                "attributes": {hobby["key"]: "рыбалка"},
            },
            headers=mine,
        )
        assert person.status_code == 201, person.text
        assert person.json()["attributes"] == {hobby["key"]: "Рыбалка"}
        org_attr = await client.post(
            "/v1/organizations",
            json={
                "legal_name": "X",
                "directions": [north],
                "attributes": {hobby["key"]: "Рыбалка"},
            },
            headers=mine,
        )
        problem(org_attr, 422)  # a person's attribute is not an organization's
    finally:
        await _archive(client, issuer, hobby)
