"""Import across chunk boundaries (the service here matches and writes two rows at a time): rows
behave as if imported one after another whichever chunk they are in — duplicates in the file,
similar names of earlier rows, two updates of one organization — and a bad row or a damaged
file in a later chunk leaves nothing written."""

from __future__ import annotations

import io
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    admin,
    fresh_direction,
    fresh_domain,
    fresh_inn,
    problem,
    run_import,
    sales,
)
from openpyxl import Workbook

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    return {"IMPORT_CHUNK_ROWS": "2"}


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=60) as http:
        yield http


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def _import(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, mode: str, name: str
) -> httpx.Response:
    return await run_import(
        client,
        headers,
        files={"file": (name, content, "application/octet-stream")},
        data={"mode": mode},
    )


async def _names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/v1/organizations?limit=500", headers=headers)
    assert response.status_code == 200, response.text
    return sorted(item["legal_name"] for item in response.json())


def _by_row(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {line["row"]: line for line in body["report"]}


async def test_duplicates_and_similar_names_are_found_across_chunks(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    me = sales(issuer, fresh_direction())
    inn, first, second = fresh_inn(), f"info@{fresh_domain()}", f"info@{fresh_domain()}"
    content = _xlsx(
        [
            ["Наименование", "ИНН", "E-mail"],
            ["Ромашка Плюс", inn, first],  # 2   chunk 1
            ["ООО «Ромашка Плюс»", None, second],  # 3
            ["Ромашка-Плюс", None, None],  # 4   chunk 2
            ["Другая", inn, None],  # 5: the INN of row 2
            ["Третья", None, second.upper().replace("INFO", "info")],  # 6   chunk 3: row 3's
            ["Четвёртая", fresh_inn(), first],  # 7: row 2's e-mail, but another INN
        ]
    )
    for mode in ("dry_run", "valid_rows"):
        response = await _import(client, me, content, mode, "orgs.xlsx")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["rows"], body["created"], body["skipped"]) == (6, 4, 2)
        rows = _by_row(body)
        assert rows[5]["errors"][0]["kind"] == "duplicate_in_file"
        assert rows[5]["errors"][0]["message"] == "the same inn as row 2"
        assert rows[6]["errors"][0]["message"] == "the same email as row 3"
        if mode == "dry_run":
            assert rows[7]["action"] == "created"
            # row 3 has no INN: compared with row 2 (same chunk); row 4 with rows 2 and 3
            assert [c["organization_id"] for c in rows[3]["candidates"]] == [
                rows[2]["organization_id"]
            ]
            assert {c["organization_id"] for c in rows[4]["candidates"]} == {
                rows[2]["organization_id"],
                rows[3]["organization_id"],
            }
            # rows with an INN are compared with organizations without one, never with a
            # later row or themselves
            assert rows[2]["candidates"] == []
            assert rows[7]["candidates"] == []
    assert await _names(client, me) == sorted(
        ["Ромашка Плюс", "ООО «Ромашка Плюс»", "Ромашка-Плюс", "Четвёртая"]
    )
    again = _by_row((await _import(client, me, content, "dry_run", "orgs.xlsx")).json())
    assert [(again[n]["action"], again[n]["matched_by"]) for n in (2, 3, 7)] == [
        ("unchanged", "inn"),
        ("unchanged", "email"),
        ("unchanged", "inn"),
    ]


async def test_a_bad_row_in_a_later_chunk_rejects_everything(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    existing = await client.post(
        "/v1/organizations",
        json={"legal_name": "Было", "inn": fresh_inn(), "directions": [north]},
        headers=me,
    )
    assert existing.status_code == 201, existing.text
    good = [["Компания", fresh_inn()] for _ in range(5)]
    rows = [["Наименование", "ИНН"], ["Стало", existing.json()["inn"]], *good]
    rejected = await _import(
        client, me, _xlsx([*rows, ["Плохая", "7707083894"]]), "all_or_nothing", "o.xlsx"
    )
    body = problem(rejected, 422)
    assert body["type"].endswith("import-rejected")
    assert (body["rows"], body["created"], body["updated"], body["skipped"]) == (7, 0, 0, 7)
    assert [line["row"] for line in body["report"]] == [8]  # only the bad row: none was written
    assert _by_row(body)[8]["errors"][0]["field"] == "inn"
    assert await _names(client, me) == ["Было"]
    audit = await client.get(f"/v1/organizations/{existing.json()['id']}/audit", headers=me)
    assert [e["action"] for e in audit.json()] == ["created"]


async def test_a_file_damaged_in_a_later_chunk_writes_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    me = sales(issuer, fresh_direction())
    note = "примечание " * 20
    lines = [f"Фирма {n};{note}".encode() for n in range(400)]
    lines[390] = b"\xff\xfe broken \xff"  # past the part read to tell the encoding
    content = "Наименование;Примечание\r\n".encode() + b"\r\n".join(lines) + b"\r\n"
    response = await _import(client, me, content, "valid_rows", "o.csv")
    body = problem(response, 422)
    assert body["type"].endswith("unreadable-file")
    assert "line 392 is not UTF-8 text (byte 0xFF at character 1)" in body["detail"]
    assert "save the file as UTF-8" in body["detail"]
    assert await _names(client, me) == []


async def test_one_organization_updated_twice_in_a_chunk_keeps_both_changes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    key = f"segment_{uuid.uuid4().hex[:8]}"
    defined = await client.post(
        "/v1/attributes",
        json={"entity_kind": "organization", "key": key, "label": key, "type": "string"},
        headers=admin(issuer),
    )
    assert defined.status_code == 201, defined.text
    mail = f"info@{fresh_domain()}"
    created = await client.post(
        "/v1/organizations",
        json={
            "legal_name": "Старое",
            "inn": fresh_inn(),
            "emails": [mail],
            "directions": [north],
            "attributes": {key: "крупный"},
        },
        headers=me,
    )
    assert created.status_code == 201, created.text
    org = created.json()
    content = _xlsx(
        [
            ["Наименование", "ИНН", "E-mail", "Телефон"],
            ["Новое", org["inn"], None, "+7 495 111-22-33"],  # by INN
            ["Новое", None, mail, "+7 495 111-22-44"],  # by e-mail, same chunk
        ]
    )
    response = await _import(client, me, content, "valid_rows", "o.xlsx")
    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 2
    found = (await client.get(f"/v1/organizations/{org['id']}", headers=me)).json()
    assert found["version"] == 3
    assert found["legal_name"] == "Новое"
    # lists merge (replace is a choice): the second row adds its phone to the first one's
    assert [p["number"] for p in found["phones"]] == ["+74951112233", "+74951112244"]
    assert found["attributes"] == {key: "крупный"}  # a row without the column keeps it
    audit = (await client.get(f"/v1/organizations/{org['id']}/audit", headers=me)).json()
    assert [(e["action"], e["version"]) for e in audit] == [
        ("created", 1),
        ("updated", 2),
        ("updated", 3),
    ]
    assert audit[2]["changes"]["phones"]["old"][0]["number"] == "+74951112233"
