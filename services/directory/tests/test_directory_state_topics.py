"""ADR 18 over real HTTP and Kafka: directions, lists, static list members and the unwanted
register are followed by their whole records on their state topics; a member that leaves a list
gets a tombstone carrying its order."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import (
    DIRECTIONS_STATE,
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    ORGANIZATIONS,
    REGISTER_STATE,
)
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, admin, bearer, fresh_direction, fresh_inn, sales

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


async def _call(
    client: httpx.AsyncClient, method: str, url: str, headers: dict[str, str], **kwargs: Any
) -> Any:
    response = await client.request(method, url, headers=headers, **kwargs)
    assert response.status_code in (200, 201, 204), response.text
    return response.json() if response.content else None


async def test_directions_lists_members_and_register_entries_have_state_records(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    directions = await tail(DIRECTIONS_STATE).start()
    lists = await tail(LISTS_STATE).start()
    members = await tail(LIST_MEMBERS_STATE).start()
    register = await tail(REGISTER_STATE).start()
    changes = await tail(ORGANIZATIONS).start()
    root = admin(issuer)

    code = fresh_direction()
    await _call(client, "POST", "/v1/directions", root, json={"code": code, "name": "Север"})
    await _call(
        client,
        "PATCH",
        f"/v1/directions/{code}",
        root | {"If-Match": 'W/"1"'},
        json={"name": "Крайний север"},
    )
    states = await directions.events_of(code, 2)
    assert [(e.payload["version"], e.payload["name"]) for e in states] == [
        (1, "Север"),
        (2, "Крайний север"),
    ]

    me = sales(issuer, code)
    orgs = [
        await _call(
            client,
            "POST",
            "/v1/organizations",
            me,
            json={"legal_name": f"Org {n}", "inn": fresh_inn(), "directions": [code]},
        )
        for n in range(3)
    ]
    a, b, c = (org["id"] for org in orgs)
    found = await _call(
        client, "POST", "/v1/lists", me, json={"name": "Клиенты", "directions": [code]}
    )
    list_id = found["id"]
    members_url = f"/v1/lists/{list_id}/members"
    await _call(client, "POST", members_url, me, json={"organization_ids": [a, b, c]})
    await _call(client, "POST", f"{members_url}/remove", me, json={"organization_ids": [a]})
    await _call(client, "POST", members_url, me, json={"organization_ids": [a]})
    await _call(
        client, "PATCH", f"/v1/lists/{list_id}", me | {"If-Match": 'W/"1"'}, json={"name": "VIP"}
    )

    created, renamed = await lists.events_of(list_id, 2)
    assert (created.payload["version"], created.payload["name"]) == (1, "Клиенты")
    assert (renamed.payload["version"], renamed.payload["name"]) == (2, "VIP")
    assert created.payload["kind"] == "static"
    assert created.directions == (code,)
    change = await changes.wait_for(
        lambda e: e.type == "directory.list.changed" and e.aggregate_id == f"list:{list_id}"
    )
    assert (change.payload["change"], change.payload["name"]) == ("created", "Клиенты")

    first, again = await members.events_of(f"{list_id}:{a}", 2)
    left = await members.removal_of(f"{list_id}:{a}")
    assert left.order is not None
    assert first.payload["revision"] < left.order[1] < again.payload["revision"]
    assert first.payload["organization_id"] == a
    assert first.directions == (code,)
    await members.events_of(f"{list_id}:{b}", 1)

    # a merge moves the merged one's memberships to the survivor: the survivor's record stays,
    # the merged one's membership gets a tombstone
    await _call(
        client,
        "POST",
        f"/v1/organizations/{b}/merge",
        me | {"If-Match": 'W/"1"'},
        json={"other_id": c, "other_version": 1},
    )
    gone = await members.removal_of(f"{list_id}:{c}")
    assert gone.order is not None
    await members.events_of(f"{list_id}:{b}", 2)

    officer = bearer(issuer, "sec", roles=["security_officer"])
    entry = await _call(
        client,
        "POST",
        "/v1/unwanted",
        officer,
        json={"inn": fresh_inn(), "reason": "Долги", "decided_by": "Совет"},
    )
    await _call(client, "DELETE", f"/v1/unwanted/{entry['id']}", officer)
    listed, removed = await register.events_of(entry["id"], 2)
    assert (listed.payload["version"], listed.payload["active"]) == (1, True)
    assert (removed.payload["version"], removed.payload["active"]) == (2, False)
    assert listed.payload["reason"] == "Долги"

    await _call(client, "DELETE", f"/v1/lists/{list_id}", me | {"If-Match": 'W/"2"'})
    deleted = (await lists.events_of(list_id, 3))[2]
    assert (deleted.payload["version"], deleted.payload["deleted"]) == (3, True)
