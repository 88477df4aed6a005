"""Export over real HTTP: .xlsx and CSV (UTF-8 with BOM, Cyrillic intact) of a filter and of a
list, direction-filtered, with custom attributes as columns."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.processes import ServiceProcess
from directory_testkit import admin, fresh_direction, fresh_inn, problem, sales
from openpyxl import load_workbook

pytestmark = pytest.mark.integration


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=60) as http:
        yield http


async def _org(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/organizations", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


async def test_a_filter_exports_to_csv_and_xlsx_with_cyrillic_and_attributes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    mine, theirs = sales(issuer, north), sales(issuer, south)
    key = f"segment_{uuid.uuid4().hex[:8]}"
    definition = await client.post(
        "/v1/attributes",
        json={
            "entity_kind": "organization",
            "key": key,
            "label": "Сегмент",
            "type": "enum",
            "options": ["Крупный", "Малый"],
        },
        headers=admin(issuer),
    )
    assert definition.status_code == 201
    inn = fresh_inn()
    await _org(
        client,
        mine,
        legal_name="ООО «Ёлка» 🌲",
        inn=inn,
        phones=["+7 495 500-55-50"],
        tags=["опт", "vip"],
        directions=[north],
        attributes={key: "Крупный"},
    )
    await _org(client, mine, legal_name='=HYPERLINK("http://evil")', directions=[north])
    await _org(client, theirs, legal_name="Чужая", directions=[south])

    response = await client.post("/v1/organizations/export", json={"format": "csv"}, headers=mine)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert "filename*=UTF-8''organizations-" in response.headers["content-disposition"]
    rows = _csv(response)
    assert len(rows) == 2  # the other direction's organization is not exported
    elka = next(r for r in rows if r["inn"] == inn)
    assert elka["legal_name"] == "ООО «Ёлка» 🌲"
    assert elka["phones"] == "+74955005550"
    assert elka["tags"] == "опт; vip"
    assert elka[key] == "Крупный"
    assert next(r for r in rows if r["inn"] != inn)["legal_name"].startswith("'=")

    response = await client.post(
        "/v1/organizations/export",
        json={"format": "xlsx", "headers": "ru", "filter": {"q": "елка"}},
        headers=mine,
    )
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content), read_only=True).worksheets[0]
    table = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert table[0][:4] == ["id", "Наименование", "Краткое наименование", "ИНН"]
    assert "Сегмент" in table[0]
    assert [row[1] for row in table[1:]] == ["ООО «Ёлка» 🌲"]

    nothing = await client.post(
        "/v1/organizations/export", json={"format": "csv", "filter": {"q": "елка"}}, headers=theirs
    )
    assert _csv(nothing) == []
    problem(
        await client.post("/v1/organizations/export", json={"format": "pdf"}, headers=mine), 422
    )
    problem(
        await client.post(
            "/v1/organizations/export",
            json={"filter": {"attributes": {"nope": {"eq": 1}}}},
            headers=mine,
        ),
        422,
    )
    current = await client.get(f"/v1/attributes/{definition.json()['id']}", headers=admin(issuer))
    await client.delete(
        f"/v1/attributes/{definition.json()['id']}",
        headers={**admin(issuer), "If-Match": current.headers["etag"]},
    )


async def test_a_list_exports_only_the_members_the_reader_sees(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    both, mine = sales(issuer, north, south), sales(issuer, north)
    a = await _org(client, mine, legal_name="Северная", directions=[north])
    b = await _org(client, both, legal_name="Южная", directions=[south])
    created = await client.post(
        "/v1/lists", json={"name": "Список «Ё»", "directions": [north, south]}, headers=both
    )
    list_id = created.json()["id"]
    await client.post(
        f"/v1/lists/{list_id}/members", json={"organization_ids": [a["id"], b["id"]]}, headers=both
    )
    everything = await client.get(f"/v1/lists/{list_id}/export?format=csv", headers=both)
    assert [r["legal_name"] for r in _csv(everything)] == ["Северная", "Южная"]
    assert "filename*=UTF-8''%D0%A1%D0%BF" in everything.headers["content-disposition"]
    north_only = await client.get(f"/v1/lists/{list_id}/export?format=xlsx", headers=mine)
    sheet = load_workbook(io.BytesIO(north_only.content), read_only=True).worksheets[0]
    assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == ["Северная"]
    problem(
        await client.get(f"/v1/lists/{list_id}/export", headers=sales(issuer, fresh_direction())),
        404,
    )
