"""Merging organizations over real HTTP: chosen values, employments, list memberships and
register entries move to the survivor, the other is deleted pointing to it, audit, the merged
event; preconditions; the direction rule."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ORGANIZATIONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    TopicTail,
    admin,
    bearer,
    fresh_direction,
    fresh_inn,
    problem,
    sales,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


async def _post(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], **body: Any
) -> dict[str, Any]:
    response = await client.post(url, json=body, headers=headers)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_merge_moves_references_and_deletes_the_other(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    survivor = await _post(
        client,
        "/v1/organizations",
        me,
        legal_name="Ромашка",
        inn=fresh_inn(),
        emails=["a@romashka.example"],
        tags=["vip"],
        directions=[north],
    )
    other = await _post(
        client,
        "/v1/organizations",
        me,
        legal_name="ООО «Ромашка»",
        industry="Цветы",
        emails=["b@romashka.example"],
        tags=["old"],
        directions=[north],
    )
    person = await _post(
        client,
        "/v1/persons",
        me,
        last_name="Петров",
        employments=[{"organization_id": other["id"], "position": "Директор"}],
    )
    listed = await _post(client, "/v1/lists", me, name="Цветы", directions=[north])
    added = await client.post(
        f"/v1/lists/{listed['id']}/members",
        json={"organization_ids": [other["id"]]},
        headers=me,
    )
    assert added.status_code == 200, added.text
    officer = bearer(issuer, "sec", roles=["security_officer"])
    await _post(
        client,
        "/v1/unwanted",
        officer,
        organization_id=other["id"],
        reason="Долги",
        decided_by="Совет",
    )
    events = await tail(ORGANIZATIONS).start()

    url = f"/v1/organizations/{survivor['id']}/merge"
    body = {"other_id": other["id"], "other_version": 1, "take": ["legal_name"]}
    problem(await client.post(url, json=body, headers=me), 428)
    problem(await client.post(url, json=body, headers={**me, "If-Match": 'W/"7"'}), 412)
    stale = await client.post(
        url, json={**body, "other_version": 5}, headers={**me, "If-Match": 'W/"1"'}
    )
    problem(stale, 409)
    itself = {**body, "other_id": survivor["id"]}
    problem(await client.post(url, json=itself, headers={**me, "If-Match": 'W/"1"'}), 409)
    wrong = {**body, "take": ["nonsense"]}
    problem(await client.post(url, json=wrong, headers={**me, "If-Match": 'W/"1"'}), 422)

    merged = await client.post(
        url, json={**body, "values": {"status": "client"}}, headers={**me, "If-Match": 'W/"1"'}
    )
    assert merged.status_code == 200, merged.text
    result = merged.json()
    assert merged.headers["etag"] == 'W/"2"'
    org = result["survivor"]
    assert org["legal_name"] == "ООО «Ромашка»"  # taken from the other
    assert org["inn"] == survivor["inn"]  # kept
    assert org["industry"] == "Цветы"  # filled in
    assert org["emails"] == ["a@romashka.example", "b@romashka.example"]
    assert org["tags"] == ["vip", "old"]
    assert org["status"] == "client"
    assert org["blocked"] is True  # the register entry moved with it
    assert (
        result["employments_moved"],
        result["list_memberships_moved"],
        result["register_entries_moved"],
    ) == (1, 1, 1)

    problem(await client.get(f"/v1/organizations/{other['id']}", headers=me), 404)
    gone = await client.get(f"/v1/organizations/{other['id']}?include_deleted=true", headers=me)
    assert gone.json()["merged_into"] == survivor["id"]
    restore = await client.post(
        f"/v1/organizations/{other['id']}/restore",
        headers={**me, "If-Match": gone.headers["etag"]},
    )
    assert problem(restore, 409)["merged_into"] == survivor["id"]
    employed = await client.get(f"/v1/persons/{person['id']}", headers=me)
    assert [j["organization_id"] for j in employed.json()["employments"]] == [survivor["id"]]
    members = await client.get(f"/v1/lists/{listed['id']}/members", headers=me)
    assert [m["id"] for m in members.json()["items"]] == [survivor["id"]]
    trail = await client.get(f"/v1/organizations/{survivor['id']}/audit", headers=me)
    assert [e["action"] for e in trail.json()][-2:] == ["merged", "blocked"]
    other_trail = await client.get(f"/v1/organizations/{other['id']}/audit", headers=me)
    assert other_trail.json()[-1]["action"] == "merged_into"

    event = await events.wait_for(lambda e: e.type == "directory.organization.merged")
    assert event.aggregate_id == survivor["id"]
    assert event.payload["merged_id"] == other["id"]
    assert event.payload["changes"]["legal_name"]["new"] == "ООО «Ромашка»"
    await events.wait_for(
        lambda e: e.type == "directory.organization.deleted" and e.aggregate_id == other["id"]
    )
    # a merged organization cannot be merged again: the answer names where it went
    again = await client.post(
        url, json={**body, "other_version": 2}, headers={**me, "If-Match": 'W/"2"'}
    )
    assert problem(again, 409)["merged_into"] == survivor["id"]


async def test_another_direction_cannot_merge_what_it_cannot_see_or_write(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    northern, southern = sales(issuer, north), sales(issuer, south)
    both = sales(issuer, north, south)
    a = await _post(client, "/v1/organizations", northern, legal_name="А", directions=[north])
    b = await _post(client, "/v1/organizations", southern, legal_name="Б", directions=[south])
    shared = await _post(
        client, "/v1/organizations", both, legal_name="В", directions=[north, south]
    )
    headers = {"If-Match": 'W/"1"'}
    # the other is invisible: 404, like a missing one
    response = await client.post(
        f"/v1/organizations/{a['id']}/merge",
        json={"other_id": b["id"], "other_version": 1},
        headers={**northern, **headers},
    )
    problem(response, 404)
    response = await client.post(
        f"/v1/organizations/{b['id']}/merge",
        json={"other_id": a["id"], "other_version": 1},
        headers={**northern, **headers},
    )
    problem(response, 404)
    # visible, but it lies also in a direction he does not belong to: 403
    response = await client.post(
        f"/v1/organizations/{a['id']}/merge",
        json={"other_id": shared["id"], "other_version": 1},
        headers={**northern, **headers},
    )
    problem(response, 403)
    for org in (a, b, shared):
        still = await client.get(f"/v1/organizations/{org['id']}", headers=both)
        assert still.json()["version"] == 1


async def test_merging_two_listed_organizations_keeps_one_active_entry_and_moves_references(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me, root = sales(issuer, north), admin(issuer)
    key = f"parent_{uuid.uuid4().hex[:8]}"
    definition = await _post(
        client,
        "/v1/attributes",
        root,
        entity_kind="organization",
        key=key,
        label="Головная",
        type="reference",
        reference_kind="organization",
    )
    try:
        survivor, other, older = [
            await _post(client, "/v1/organizations", me, legal_name=name, directions=[north])
            for name in ("Альфа", "Альфа-2", "Альфа-старая")
        ]
        child = await _post(
            client,
            "/v1/organizations",
            me,
            legal_name="Дочка",
            directions=[north],
            attributes={key: other["id"]},
        )
        officer = bearer(issuer, "sec", roles=["security_officer"])
        entries = [
            await _post(
                client,
                "/v1/unwanted",
                officer,
                organization_id=org["id"],
                reason=why,
                decided_by="СБ",
            )
            for org, why in ((survivor, "Суд"), (other, "Долги"))
        ]
        first = await client.post(
            f"/v1/organizations/{other['id']}/merge",
            json={"other_id": older["id"], "other_version": 1},
            headers={**me, "If-Match": 'W/"1"'},
        )
        assert first.status_code == 200, first.text
        # both are listed: before, moving the other's entry broke the one-active-entry rule
        merged = await client.post(
            f"/v1/organizations/{survivor['id']}/merge",
            json={"other_id": other["id"], "other_version": 2},
            headers={**me, "If-Match": 'W/"1"'},
        )
        assert merged.status_code == 200, merged.text
        result = merged.json()
        assert (result["register_entries_moved"], result["references_moved"]) == (1, 1)
        assert result["survivor"]["blocked"] is True
        closed = (await client.get(f"/v1/unwanted/{entries[1]['id']}", headers=officer)).json()
        assert closed["organization_id"] == survivor["id"]
        assert closed["removed_at"] is not None
        kept = (await client.get(f"/v1/unwanted/{entries[0]['id']}", headers=officer)).json()
        assert kept["removed_at"] is None
        # the reference follows the merge, as a change of the referring record
        moved = await client.get(f"/v1/organizations/{child['id']}", headers=me)
        assert moved.json()["attributes"][key] == survivor["id"]
        assert moved.headers["etag"] == 'W/"2"'
        trail = (await client.get(f"/v1/organizations/{child['id']}/audit", headers=me)).json()
        assert trail[-1]["changes"] == {
            f"attributes.{key}": {"old": other["id"], "new": survivor["id"]}
        }
        # what was merged into the other now points at the survivor
        gone = await client.get(f"/v1/organizations/{older['id']}?include_deleted=true", headers=me)
        assert gone.json()["merged_into"] == survivor["id"]
    finally:
        archived = await client.delete(
            f"/v1/attributes/{definition['id']}", headers={**root, "If-Match": 'W/"1"'}
        )
        assert archived.status_code == 200, archived.text
