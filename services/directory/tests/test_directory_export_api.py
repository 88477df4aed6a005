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


async def test_an_export_for_russian_excel_keeps_numbers_as_text_and_speaks_russian(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    trader = "500100732259"  # 5,00101E+11 when Excel takes it for a number
    await _org(
        client,
        me,
        legal_name="ИП Иванов",
        inn=trader,
        ogrn="304500116000157",
        phones=["+7 495 500-55-50 доб. 12"],
        status="client",
        directions=[north],
    )
    response = await client.post(
        "/v1/organizations/export", json={"format": "xlsx", "headers": "ru"}, headers=me
    )
    assert response.status_code == 200, response.text
    sheet = load_workbook(io.BytesIO(response.content)).worksheets[0]
    head = [c.value for c in sheet[1]]
    row = {name: sheet.cell(row=2, column=index + 1) for index, name in enumerate(head)}
    for column, value in (
        ("ИНН", trader),
        ("ОГРН", "304500116000157"),
        ("Телефоны", "+74955005550 доб. 12"),
    ):
        assert (row[column].value, row[column].data_type) == (value, "s"), column
        assert row[column].number_format == "@", column
    assert row["КПП"].number_format == "@"
    assert row["Статус"].value == "Клиент"
    english = await client.post(
        "/v1/organizations/export", json={"format": "csv", "headers": "en"}, headers=me
    )
    assert _csv(english)[0]["status"] == "client"

    cp1251 = await client.post(
        "/v1/organizations/export",
        json={"format": "csv", "headers": "ru", "encoding": "cp1251"},
        headers=me,
    )
    assert cp1251.status_code == 200, cp1251.text
    assert cp1251.headers["content-type"] == "text/csv; charset=windows-1251"
    assert not cp1251.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(cp1251.content.decode("cp1251")), delimiter=";"))
    assert [(r["Наименование"], r["ИНН"], r["Статус"]) for r in rows] == [
        ("ИП Иванов", trader, "Клиент")
    ]


async def test_a_windows_1251_export_refuses_characters_it_lacks_before_it_starts(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    await _org(client, me, legal_name="ООО «Ёлка»", directions=[north])
    await _org(client, me, legal_name="Кафе", tags=["Café"], directions=[north])
    body = problem(
        await client.post(
            "/v1/organizations/export",
            json={"format": "csv", "encoding": "cp1251"},
            headers=me,
        ),
        422,
    )
    assert body["type"].endswith("not-windows-1251")
    assert body["detail"].startswith("the organization «Кафе» holds «é» (U+00E9)")
    utf8 = await client.post(
        "/v1/organizations/export", json={"format": "csv", "encoding": "utf-8"}, headers=me
    )
    assert sorted(r["legal_name"] for r in _csv(utf8)) == ["Кафе", "ООО «Ёлка»"]
    only_elka = await client.post(
        "/v1/organizations/export",
        json={"format": "csv", "encoding": "cp1251", "filter": {"q": "елка"}},
        headers=me,
    )
    assert only_elka.status_code == 200, only_elka.text
    assert "ООО «Ёлка»" in only_elka.content.decode("cp1251")
