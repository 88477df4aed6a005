"""Persons and employments over real HTTP: visibility through employments, If-Match, events."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS, PERSONS_STATE
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, admin, fresh_direction, problem, sales

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


async def _org(client: httpx.AsyncClient, headers: dict[str, str], direction: str) -> str:
    response = await client.post(
        "/v1/organizations",
        json={"legal_name": f"Org {direction}", "directions": [direction]},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    org_id: str = response.json()["id"]
    return org_id


async def _person(
    client: httpx.AsyncClient, headers: dict[str, str], **fields: Any
) -> dict[str, Any]:
    response = await client.post("/v1/persons", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    assert response.headers["etag"] == 'W/"1"'
    body: dict[str, Any] = response.json()
    return body


async def test_a_person_is_seen_through_visible_employments_or_own_directions(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south, west = fresh_direction(), fresh_direction(), fresh_direction()
    n, s, w = sales(issuer, north), sales(issuer, south), sales(issuer, west)
    north_org, south_org = await _org(client, n, north), await _org(client, s, south)

    person = await _person(
        client,
        n,
        last_name="Петров",
        first_name="Пётр",
        last_name_latin="Petrov",
        employments=[{"organization_id": north_org, "position": "Директор"}],
    )
    assert person["directions"] == []
    assert [j["organization_id"] for j in person["employments"]] == [north_org]
    url = f"/v1/persons/{person['id']}"
    for viewer in (s, w):
        problem(await client.get(url, headers=viewer), 404)
        problem(await client.get(f"{url}/audit", headers=viewer), 404)
        assert (await client.get("/v1/persons", headers=viewer)).json() == []
    # an organization the caller does not see cannot be referenced
    refused = await client.post(
        f"{url}/employments", json={"organization_id": south_org}, headers=n
    )
    assert "no such organization" in str(problem(refused, 422)["errors"])
    problem(
        await client.post(
            f"{url}/employments", json={"organization_id": str(uuid.uuid4())}, headers=n
        ),
        422,
    )
    # once he also works at a southern organization, the south sees him with that job only
    added = await client.post(
        f"{url}/employments",
        json={"organization_id": south_org, "position": "Консультант", "since": "2024-01-01"},
        headers=admin(issuer),
    )
    assert added.status_code == 201, added.text
    assert added.headers["etag"] == 'W/"1"'
    south_view = (await client.get(url, headers=s)).json()
    assert [j["organization_id"] for j in south_view["employments"]] == [south_org]
    north_view = (await client.get(url, headers=n)).json()
    assert [j["organization_id"] for j in north_view["employments"]] == [north_org]
    full = (await client.get(url, headers=admin(issuer))).json()
    assert {j["organization_id"] for j in full["employments"]} == {north_org, south_org}
    by_org = await client.get("/v1/persons", params={"organization_id": north_org}, headers=n)
    assert [p["id"] for p in by_org.json()] == [person["id"]]
    hidden_org = await client.get("/v1/persons", params={"organization_id": north_org}, headers=s)
    assert hidden_org.json() == []
    # the south's audit shows the person and the southern job, never the northern one
    south_trail = (await client.get(f"{url}/audit", headers=s)).json()
    assert [(e["entity_kind"], e["action"]) for e in south_trail] == [
        ("person", "created"),
        ("employment", "created"),
    ]
    assert south_trail[1]["changes"]["organization_id"]["new"] == south_org

    # a person of his own direction is seen there
    own = await _person(client, w, first_name_latin="John", directions=[west])
    assert (await client.get(f"/v1/persons/{own['id']}", headers=w)).status_code == 200
    problem(await client.get(f"/v1/persons/{own['id']}", headers=n), 404)
    problem(
        await client.post("/v1/persons", json={"last_name": "X", "directions": [south]}, headers=n),
        403,
    )
    # ending the northern job hides him from the north
    job = north_view["employments"][0]
    gone = await client.delete(f"{url}/employments/{job['id']}", headers=n | {"If-Match": 'W/"1"'})
    assert gone.status_code == 204, gone.text
    problem(await client.get(url, headers=n), 404)
    assert (await client.get(url, headers=s)).status_code == 200


async def test_person_changes_need_etags_are_audited_and_published(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(PERSONS).start()
    direction, org_direction = fresh_direction(), fresh_direction()
    me = sales(issuer, direction, org_direction, subject="carol")
    org = await _org(client, me, org_direction)
    person = await _person(
        client,
        me,
        last_name="Смирнова",
        emails=["Anna@Example.org"],
        phones=["+7 912 345-67-89"],
        directions=[direction],
        employments=[{"organization_id": org, "position": "Бухгалтер"}],
    )
    url = f"/v1/persons/{person['id']}"
    assert person["phones"][0]["number"] == "+79123456789"
    job_id = person["employments"][0]["id"]

    problem(await client.patch(url, json={"first_name": "Анна"}, headers=me), 428)
    patch = {"first_name": "Анна", "consent": {"email": True}, "birthday": "1990-03-08"}
    results = await asyncio.gather(
        *(client.patch(url, json=patch, headers=me | {"If-Match": 'W/"1"'}) for _ in range(3))
    )
    assert sorted(r.status_code for r in results) == [200, 412, 412]
    problem(
        await client.patch(
            url, json={"last_name_latin": "Смирнова"}, headers=me | {"If-Match": 'W/"2"'}
        ),
        422,
    )
    problem(
        await client.patch(
            url, json={"birthday": "2999-01-01"}, headers=me | {"If-Match": 'W/"2"'}
        ),
        422,
    )
    job_url = f"{url}/employments/{job_id}"
    problem(await client.patch(job_url, json={"position": "Главбух"}, headers=me), 428)
    moved = await client.patch(
        job_url,
        json={"position": "Главный бухгалтер", "until": "2030-12-31"},
        headers=me | {"If-Match": 'W/"1"'},
    )
    assert moved.status_code == 200, moved.text
    assert moved.headers["etag"] == 'W/"2"'
    problem(
        await client.patch(job_url, json={"position": "X"}, headers=me | {"If-Match": 'W/"1"'}), 412
    )
    deleted = await client.delete(url, headers=me | {"If-Match": 'W/"2"'})
    assert deleted.status_code == 204
    problem(await client.get(url, headers=me), 404)
    restored = await client.post(f"{url}/restore", headers=me | {"If-Match": 'W/"3"'})
    assert restored.status_code == 200, restored.text
    assert restored.json()["version"] == 4

    trail = (await client.get(f"{url}/audit", headers=me)).json()
    assert [(e["entity_kind"], e["action"], e["version"]) for e in trail] == [
        ("person", "created", 1),
        ("employment", "created", 1),
        ("person", "updated", 2),
        ("employment", "updated", 2),
        ("person", "deleted", 3),
        ("person", "restored", 4),
    ]
    assert trail[2]["changes"]["consent"]["new"]["email"] is True
    assert trail[2]["actor_subject"] == "carol"

    events = await topic.events_of(person["id"], 6)
    assert [(e.type, e.payload.get("change")) for e in events] == [
        ("directory.person.created", None),
        ("directory.employment.changed", "created"),
        ("directory.person.updated", None),
        ("directory.employment.changed", "updated"),
        ("directory.person.deleted", None),
        ("directory.person.restored", None),
    ]
    created, job_created, updated, job_updated = events[:4]
    assert created.payload["emails"] == ["Anna@example.org"]  # the domain is lower-cased
    assert set(created.directions) == {direction, org_direction}
    assert job_created.payload["organization_id"] == org
    assert updated.payload["changes"]["first_name"] == {"old": None, "new": "Анна"}
    assert updated.payload["changes"]["birthday"] == {"old": None, "new": "1990-03-08"}
    assert job_updated.payload["changes"]["position"] == {
        "old": "Бухгалтер",
        "new": "Главный бухгалтер",
    }
    assert job_updated.payload["until"] == "2030-12-31"


async def test_a_person_never_becomes_invisible_to_everybody(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    org = await _org(client, me, direction)
    person = await _person(client, me, last_name="Один", employments=[{"organization_id": org}])
    url = f"/v1/persons/{person['id']}"
    job = person["employments"][0]
    problem(
        await client.delete(f"{url}/employments/{job['id']}", headers=me | {"If-Match": 'W/"1"'}),
        409,
    )
    own = await client.patch(
        url, json={"directions": [direction]}, headers=me | {"If-Match": 'W/"1"'}
    )
    assert own.status_code == 200, own.text
    gone = await client.delete(f"{url}/employments/{job['id']}", headers=me | {"If-Match": 'W/"1"'})
    assert gone.status_code == 204
    problem(
        await client.patch(url, json={"directions": []}, headers=me | {"If-Match": 'W/"2"'}), 422
    )
    problem(
        await client.post("/v1/persons", json={"last_name": "Никто"}, headers=admin(issuer)), 422
    )
    huge = await client.post(
        "/v1/persons",
        content=b'{"last_name": "' + "Я".encode() * 1_000_000 + b'"}',
        headers={**me, "content-type": "application/json"},
    )
    problem(huge, 413)


async def test_every_person_write_from_another_direction_is_404_or_403(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    n, s = sales(issuer, north), sales(issuer, south)
    org = await _org(client, n, north)
    person = await _person(client, n, last_name="Чужой", employments=[{"organization_id": org}])
    url = f"/v1/persons/{person['id']}"
    job_url = f"{url}/employments/{person['employments'][0]['id']}"
    one = {"If-Match": 'W/"1"'}
    problem(await client.patch(url, json={"first_name": "X"}, headers=s | one), 404)
    problem(await client.delete(url, headers=s | one), 404)
    problem(await client.post(f"{url}/restore", headers=s | one), 404)
    problem(await client.patch(job_url, json={"position": "X"}, headers=s | one), 404)
    problem(await client.delete(job_url, headers=s | one), 404)
    south_org = await _org(client, s, south)
    problem(
        await client.post(f"{url}/employments", json={"organization_id": south_org}, headers=s),
        404,
    )
    # the north may not give him a southern direction of his own
    problem(await client.patch(url, json={"directions": [south]}, headers=n | one), 403)
    unchanged = (await client.get(url, headers=n)).json()
    assert (unchanged["version"], unchanged["first_name"], unchanged["directions"]) == (1, None, [])
    trail = (await client.get(f"{url}/audit", headers=admin(issuer))).json()
    assert [e["action"] for e in trail] == ["created", "created"]


async def test_a_change_may_move_a_person_out_of_ones_own_sight(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    n = sales(issuer, north)
    south_org = await _org(client, admin(issuer), south)
    person = await _person(
        client,
        admin(issuer),
        last_name="Уходящий",
        directions=[north],
        employments=[{"organization_id": south_org}],
    )
    url = f"/v1/persons/{person['id']}"
    left = await client.patch(url, json={"directions": []}, headers=n | {"If-Match": 'W/"1"'})
    assert left.status_code == 200, left.text
    assert (left.json()["directions"], left.json()["employments"]) == ([], [])
    problem(await client.get(url, headers=n), 404)
    assert (await client.get(url, headers=sales(issuer, south))).json()["version"] == 2


async def test_the_person_state_follows_every_change_with_its_employments(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    """ADR 18: a snapshot of the person with its live employments after every change, also an
    employment's (which does not change the person's version)."""
    states = await tail(PERSONS_STATE).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    org = await _org(client, me, direction)
    person = await _person(
        client,
        me,
        last_name="Иванова",
        directions=[direction],
        employments=[{"organization_id": org, "position": "Бухгалтер"}],
    )
    job_url = f"/v1/persons/{person['id']}/employments/{person['employments'][0]['id']}"
    moved = await client.patch(
        job_url, json={"position": "Главный бухгалтер"}, headers=me | {"If-Match": 'W/"1"'}
    )
    assert moved.status_code == 200, moved.text
    last = await states.wait_for(
        lambda e: (
            e.aggregate_id == person["id"]
            and [j["position"] for j in e.payload["employments"]] == ["Главный бухгалтер"]
        )
    )
    snapshots = [e for e in states.seen if e.aggregate_id == person["id"]]
    order = [(e.payload["version"], e.payload["revision"]) for e in snapshots]
    assert order == sorted(set(order))
    assert last.payload["version"] == 1  # an employment change keeps the person's version
    assert last.payload["last_name"] == "Иванова"
    assert last.payload["employments"][0]["organization_id"] == org
    assert (last.payload["deleted"], last.payload["blocked"]) == (False, False)
