"""Lists over real HTTP: static members by hand, by filter and by upload; dynamic lists; the
direction rule on lists and on members; membership events; broken uploads."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ORGANIZATIONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, fresh_direction, fresh_inn, problem, sales
from openpyxl import Workbook

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:
        yield http


async def _org(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/organizations", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _members(client: httpx.AsyncClient, headers: dict[str, str], list_id: str) -> list[str]:
    response = await client.get(f"/v1/lists/{list_id}/members?limit=500", headers=headers)
    assert response.status_code == 200, response.text
    return [item["legal_name"] for item in response.json()["items"]]


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_static_lists_by_hand_filter_and_upload_with_directions(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    north, south = fresh_direction(), fresh_direction()
    both = sales(issuer, north, south)
    mine, theirs = sales(issuer, north), sales(issuer, south)
    a = await _org(client, mine, legal_name="Альфа", inn=fresh_inn(), directions=[north])
    b = await _org(
        client, mine, legal_name="Бета", inn=fresh_inn(), tags=["vip"], directions=[north]
    )
    c = await _org(
        client, theirs, legal_name="Южная", inn=fresh_inn(), tags=["vip"], directions=[south]
    )

    created = await client.post(
        "/v1/lists", json={"name": "Рассылка «Весна»", "directions": [north, south]}, headers=both
    )
    assert created.status_code == 201, created.text
    list_id = created.json()["id"]
    events = await tail(ORGANIZATIONS).start()

    added = await client.post(
        f"/v1/lists/{list_id}/members",
        json={"organization_ids": [a["id"], c["id"], a["id"]]},
        headers=mine,
    )
    assert added.json() == {"added": 1, "removed": 0, "unchanged": 0, "not_found": [c["id"]]}
    event = await events.wait_for(lambda e: e.type == "directory.list.membership_changed")
    assert event.aggregate_id == f"list:{list_id}"
    assert event.payload["added"] == [a["id"]]

    by_filter = await client.post(
        f"/v1/lists/{list_id}/members", json={"filter": {"tags": ["vip"]}}, headers=both
    )
    assert by_filter.json()["added"] == 2  # Бета and Южная, both seen by this caller
    assert await _members(client, both, list_id) == ["Альфа", "Бета", "Южная"]
    # each reader sees only the members he may see
    assert await _members(client, mine, list_id) == ["Альфа", "Бета"]
    assert await _members(client, theirs, list_id) == ["Южная"]
    problem(await client.get(f"/v1/lists/{list_id}", headers=sales(issuer, fresh_direction())), 404)
    problem(
        await client.get(f"/v1/lists/{list_id}/members", headers=sales(issuer, fresh_direction())),
        404,
    )

    removed = await client.post(
        f"/v1/lists/{list_id}/members/remove",
        json={"organization_ids": [b["id"], c["id"]]},
        headers=mine,
    )
    assert removed.json()["removed"] == 1  # the south member is not the north reader's to remove
    assert removed.json()["not_found"] == [c["id"]]
    assert await _members(client, both, list_id) == ["Альфа", "Южная"]

    upload = _xlsx(
        [
            ["Наименование", "ИНН"],
            ["Бета", int(b["inn"])],
            ["Нет такой", "1234567890"],
            ["Чужая", c["inn"]],
        ]
    )
    response = await client.post(
        f"/v1/lists/{list_id}/members/upload",
        files={"file": ("members.xlsx", upload, "application/octet-stream")},
        headers=mine,
    )
    assert response.status_code == 200, response.text
    assert response.json()["added"] == 1
    assert response.json()["not_found"] == ["row 3", "row 4"]
    csv_upload = ("inn;name\r\n" + a["inn"] + ";Альфа\r\n").encode("utf-8-sig")
    response = await client.post(
        f"/v1/lists/{list_id}/members/upload",
        files={"file": ("m.csv", csv_upload, "text/csv")},
        headers=mine,
    )
    assert response.json() == {"added": 0, "removed": 0, "unchanged": 1, "not_found": []}

    for name, content in (
        ("broken.xlsx", b"PK\x03\x04 this is not a zip at all"),
        ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100),
        ("empty.csv", b""),
        ("noinn.csv", "Название\r\nАльфа\r\n".encode()),
        ("binary.csv", b"\x00\x01\x02garbage"),
    ):
        response = await client.post(
            f"/v1/lists/{list_id}/members/upload",
            files={"file": (name, content, "application/octet-stream")},
            headers=mine,
        )
        assert problem(response, 422)["type"].endswith("unreadable-file"), name
    assert await _members(client, both, list_id) == ["Альфа", "Бета", "Южная"]
    too_big = await client.post(
        f"/v1/lists/{list_id}/members/upload",
        files={"file": ("big.csv", b"x" * (60 * 1024 * 1024), "text/csv")},
        headers=mine,
    )
    problem(too_big, 413)


async def test_dynamic_lists_evaluate_their_filter_on_read(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    mine = sales(issuer, north)
    await _org(client, mine, legal_name="Клиент 1", status="client", directions=[north])
    created = await client.post(
        "/v1/lists",
        json={
            "name": "Клиенты",
            "kind": "dynamic",
            "filter": {"status": ["client"]},
            "directions": [north],
        },
        headers=mine,
    )
    assert created.status_code == 201, created.text
    list_id = created.json()["id"]
    assert await _members(client, mine, list_id) == ["Клиент 1"]
    await _org(client, mine, legal_name="Клиент 2", status="client", directions=[north])
    assert await _members(client, mine, list_id) == ["Клиент 1", "Клиент 2"]
    refused = await client.post(
        f"/v1/lists/{list_id}/members",
        json={"organization_ids": [created.json()["id"]]},
        headers=mine,
    )
    problem(refused, 409)
    patched = await client.patch(
        f"/v1/lists/{list_id}",
        json={"filter": {"status": ["client"], "q": "2"}},
        headers={**mine, "If-Match": 'W/"1"'},
    )
    assert patched.status_code == 200, patched.text
    assert await _members(client, mine, list_id) == ["Клиент 2"]
    problem(
        await client.post(
            "/v1/lists", json={"name": "x", "kind": "dynamic", "directions": [north]}, headers=mine
        ),
        422,
    )
    problem(
        await client.post(
            "/v1/lists", json={"name": "x", "directions": [fresh_direction()]}, headers=mine
        ),
        403,
    )
    deleted = await client.delete(f"/v1/lists/{list_id}", headers={**mine, "If-Match": 'W/"2"'})
    assert deleted.status_code == 204
    problem(await client.get(f"/v1/lists/{list_id}", headers=mine), 404)


async def test_a_shared_lists_audit_names_only_the_members_one_sees(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    both = sales(issuer, north, south)
    northern = sales(issuer, north, subject="north-employee")
    southern = sales(issuer, south)
    a = await _org(client, northern, legal_name="Северная", inn=fresh_inn(), directions=[north])
    c = await _org(client, southern, legal_name="Южная", inn=fresh_inn(), directions=[south])
    created = await client.post(
        "/v1/lists", json={"name": "Общий", "directions": [north, south]}, headers=both
    )
    list_id = created.json()["id"]
    for headers, org in ((northern, a), (southern, c)):
        added = await client.post(
            f"/v1/lists/{list_id}/members", json={"organization_ids": [org["id"]]}, headers=headers
        )
        assert added.json()["added"] == 1, added.text

    def members(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [e["changes"]["members"]["new"] for e in trail if e["action"] == "members_changed"]

    everything = (await client.get(f"/v1/lists/{list_id}/audit", headers=both)).json()
    assert [m["added_ids"] for m in members(everything)] == [[a["id"]], [c["id"]]]
    south_trail = (await client.get(f"/v1/lists/{list_id}/audit", headers=southern)).json()
    assert members(south_trail) == [
        {"added": 1, "removed": 0, "added_ids": [c["id"]], "removed_ids": []}
    ]
    assert "north-employee" not in str(south_trail)
    assert a["id"] not in str(south_trail)
    assert [e["action"] for e in south_trail] == ["created", "members_changed"]
