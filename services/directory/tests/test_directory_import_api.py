"""Import of organizations over real HTTP: the dry-run report, all-or-nothing rollback, valid
rows, duplicates by INN, e-mail and phone, similar names for review, wrong checksums, Cyrillic
headers, broken files, CSV with a BOM and ';', register warnings, events, the direction rule."""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import ORGANIZATIONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    TopicTail,
    bearer,
    fresh_direction,
    fresh_domain,
    fresh_inn,
    import_report,
    problem,
    run_import,
    sales,
    wait_for_import,
)
from openpyxl import Workbook

pytestmark = pytest.mark.integration
HEADER = ["Наименование", "ИНН", "Телефон", "E-mail", "Статус"]


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=60) as http:
        yield http


async def _org(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    response = await client.post("/v1/organizations", json=fields, headers=headers)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


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
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    mode: str,
    name: str = "orgs.xlsx",
    **form: str,
) -> httpx.Response:
    return await run_import(
        client,
        headers,
        files={"file": (name, content, "application/octet-stream")},
        data={"mode": mode, **form},
    )


async def _names(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    response = await client.get("/v1/organizations?limit=500", headers=headers)
    assert response.status_code == 200, response.text
    return [item["legal_name"] for item in response.json()]


def _by_row(body: dict[str, Any]) -> dict[int, dict[str, Any]]:
    return {line["row"]: line for line in body["report"]}


async def test_dry_run_reports_every_row_and_writes_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    domain = fresh_domain()
    by_inn = await _org(client, me, legal_name="Альфа-Трейд", inn=fresh_inn(), directions=[north])
    by_mail = await _org(
        client, me, legal_name="Почтовик", emails=[f"info@{domain}"], directions=[north]
    )
    by_phone = await _org(
        client, me, legal_name="Звонарь", phones=["+7 495 123-45-67"], directions=[north]
    )
    similar = await _org(client, me, legal_name="Ромашка Плюс", directions=[north])
    blocked_inn = fresh_inn()
    officer = bearer(issuer, "sec", roles=["security_officer"])
    entry = await client.post(
        "/v1/unwanted",
        json={"inn": blocked_inn, "reason": "Не платит", "decided_by": "Совет"},
        headers=officer,
    )
    assert entry.status_code == 201, entry.text
    new_inn = fresh_inn()
    content = _xlsx(
        [
            HEADER,
            ["Новая Компания", int(new_inn), None, None, "клиент"],  # 2: created
            ["Альфа-Трейд обновлённая", by_inn["inn"], None, None, "партнёр"],  # 3: INN
            ["Почтовик", None, None, f"INFO@{domain}", "client"],  # 4: e-mail
            ["Звонарь", None, "8 (495) 123-45-67", None, "client"],  # 5: phone
            ["Ромашка Плюс.", None, None, None, None],  # 6: similar name
            ["Кривой ИНН", "7707083894", None, None, None],  # 7: checksum
            ["Плохая почта", None, None, "not-an-email", None],  # 8
            ["Дубль в файле", new_inn, None, None, None],  # 9: same INN as row 2
            ["Неблагонадёжная", blocked_inn, None, None, None],  # 10: register warning
            [None, None, None, None, None],  # blank rows are ignored
        ]
    )
    response = await _import(client, me, content, "dry_run")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["rows"], body["created"], body["updated"], body["skipped"]) == (9, 3, 3, 3)
    rows = _by_row(body)
    assert rows[2]["action"] == "created"
    assert rows[2]["candidates"] == []
    assert rows[3]["action"] == "updated"
    assert rows[3]["matched_by"] == "inn"
    assert rows[3]["organization_id"] == by_inn["id"]
    assert rows[4]["action"] == "updated"
    assert rows[4]["matched_by"] == "email"
    assert rows[4]["organization_id"] == by_mail["id"]
    assert rows[5]["matched_by"] == "phone"
    assert rows[5]["organization_id"] == by_phone["id"]
    assert rows[6]["action"] == "created"
    assert [c["organization_id"] for c in rows[6]["candidates"]] == [similar["id"]]
    assert rows[6]["warnings"][0]["kind"] == "similar_name"
    assert rows[7]["action"] == "skipped"
    assert rows[7]["errors"][0]["field"] == "inn"
    assert rows[8]["errors"][0]["field"] == "emails"
    assert rows[9]["errors"][0]["kind"] == "duplicate_in_file"
    assert rows[10]["action"] == "created"
    assert rows[10]["warnings"][0]["kind"] == "unwanted"
    # nothing was written
    names = await _names(client, me)
    assert sorted(names) == sorted(["Альфа-Трейд", "Почтовик", "Звонарь", "Ромашка Плюс"])
    audit = await client.get(f"/v1/organizations/{by_inn['id']}/audit", headers=me)
    assert [e["action"] for e in audit.json()] == ["created"]


async def test_all_or_nothing_rolls_back_then_imports_with_events_and_audit(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    existing = await _org(client, me, legal_name="Старое имя", inn=fresh_inn(), directions=[north])
    good = [
        HEADER,
        ["Первая", fresh_inn(), None, None, None],
        ["Новое имя", existing["inn"], None, None, "client"],
    ]
    bad = [*good, ["Вторая", "1234567890", None, None, None]]
    rejected = await _import(client, me, _xlsx(bad), "all_or_nothing")
    body = problem(rejected, 422)
    assert body["state"] == "rejected"
    assert (body["rows"], body["created"], body["updated"], body["skipped"]) == (3, 0, 0, 3)
    assert _by_row(body)[4]["errors"][0]["field"] == "inn"
    assert all(line["action"] != "created" for line in body["report"])  # none was written
    assert sorted(await _names(client, me)) == ["Старое имя"]

    events = await tail(ORGANIZATIONS).start()
    done = await _import(client, me, _xlsx(good), "all_or_nothing")
    assert done.status_code == 200, done.text
    assert (done.json()["created"], done.json()["updated"]) == (1, 1)
    assert sorted(await _names(client, me)) == ["Новое имя", "Первая"]
    updated = await events.wait_for(
        lambda e: e.type == "directory.organization.updated" and e.aggregate_id == existing["id"]
    )
    assert updated.payload["changes"]["legal_name"] == {"old": "Старое имя", "new": "Новое имя"}
    created = await events.wait_for(
        lambda e: e.type == "directory.organization.created" and e.payload["legal_name"] == "Первая"
    )
    assert list(created.directions) == [north]
    audit = await client.get(f"/v1/organizations/{existing['id']}/audit", headers=me)
    assert [(e["action"], e["note"]) for e in audit.json()][-1] == ("updated", "import")


async def test_valid_rows_csv_with_bom_semicolons_and_a_mapping(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    inn = fresh_inn()
    content = (
        "Фирма;ИНН;Телефоны;Ненужное\r\n"
        f"ООО «Ёлка»;{inn};+7 495 765-43-21, 8 812 123 45 67;x\r\n"
        "Без имени;7707083894;;\r\n"
        ";;;\r\n"
    ).encode("utf-8-sig")
    response = await _import(
        client,
        me,
        content,
        "valid_rows",
        name="orgs.csv",
        mapping=json.dumps({"Фирма": "legal_name", "Ненужное": None}),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["skipped"]) == (1, 1)
    assert [line["row"] for line in body["report"]] == [3]  # only the row not simply created
    found = await client.get("/v1/organizations?limit=5", headers=me)
    [org] = found.json()
    assert org["legal_name"] == "ООО «Ёлка»"
    assert org["inn"] == inn
    assert [p["number"] for p in org["phones"]] == ["+74957654321", "+78121234567"]
    assert org["directions"] == [north]


async def test_excel_unicode_text_imports_and_a_broken_one_is_a_problem(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """Excel's «Unicode text» (UTF-16 LE with a BOM, tab separated) imports as it is; one
    broken character refuses the file naming its line, and nothing is written (ADR 58)."""
    north = fresh_direction()
    me = sales(issuer, north)
    inn = fresh_inn()
    text = (
        "Наименование\tИНН\tТелефон\r\n"
        f"ООО «Ёлка»\t{inn}\t+7 495 765-43-21\r\n"
        "Без ИНН\t7707083894\t\r\n"
    )
    content = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    queued = await client.post(
        "/v1/organizations/import",
        files={"file": ("orgs.txt", content, "text/plain")},
        data={"mode": "valid_rows"},
        headers=me,
    )
    assert queued.status_code == 202, queued.text
    job = await wait_for_import(client, me, queued.headers["Location"])
    assert job["state"] == "succeeded", job
    assert job["source"]["encoding"] == "UTF-16 LE"
    assert (job["counts"]["created"], job["counts"]["skipped"]) == (1, 1)
    report = await import_report(client, me, queued.headers["Location"])
    assert [line["row"] for line in report] == [3]  # the file's row numbers
    assert await _names(client, me) == ["ООО «Ёлка»"]

    other = sales(issuer, fresh_direction())
    broken = content.replace("Ёлка".encode("utf-16-le"), b"\x00\xd8" + "лка".encode("utf-16-le"))
    refused = problem(await _import(client, other, broken, "valid_rows", name="b.txt"), 422)
    assert refused["type"].endswith("unreadable-file")
    assert "line 2 is not UTF-16 text" in refused["detail"]
    assert await _names(client, other) == []


async def test_an_amocrm_contacts_export_is_refused_as_persons_creating_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """Read as organizations, each contact's company would get the person's mobile and
    e-mail; the job fails with a problem saying what the file is and what to import (ADR 58)."""
    me = sales(issuer, fresh_direction())
    header = ["ID", "Полное имя", "Имя", "Фамилия", "Компания", "Должность", "Мобильный телефон"]
    row = ["11", "Иван Петров", "Иван", "Петров", "ООО «Альфа»", "Директор", "+7 916 123-45-67"]
    queued = await client.post(
        "/v1/organizations/import",
        files={"file": ("amocrm.xlsx", _xlsx([header, row]), "application/octet-stream")},
        data={"mode": "valid_rows"},
        headers=me,
    )
    assert queued.status_code == 202, queued.text
    job = await wait_for_import(client, me, queued.headers["Location"])
    assert job["state"] == "failed", job
    assert job["problem"]["status"] == 422
    assert job["problem"]["type"].endswith("persons-file")
    assert "«Полное имя», «Имя», «Фамилия»" in job["problem"]["detail"]
    assert await _names(client, me) == []
    russian = await client.get(queued.headers["Location"], headers={**me, "Accept-Language": "ru"})
    assert russian.json()["problem"]["detail"].startswith("в файле люди (контакты)")


async def test_broken_files_and_bad_mappings_are_problems(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    me = sales(issuer, fresh_direction())
    broken = _xlsx([HEADER, ["А", fresh_inn()]])[:300]
    assert problem(await _import(client, me, broken, "valid_rows"), 422)["type"].endswith(
        "unreadable-file"
    )
    assert problem(await _import(client, me, b"", "dry_run", name="x.csv"), 422)
    no_name = "Цвет;Размер\r\nкрасный;XL\r\n".encode()
    assert (
        "no column"
        in problem(await _import(client, me, no_name, "dry_run", "x.csv"), 422)["detail"]
    )
    bad_map = await _import(client, me, _xlsx([HEADER]), "dry_run", mapping="[1]")
    assert problem(bad_map, 422)["type"].endswith("invalid-mapping")
    unknown = await _import(
        client, me, _xlsx([HEADER]), "dry_run", mapping=json.dumps({"ИНН": "nonsense"})
    )
    assert "unknown field" in problem(unknown, 422)["detail"]
    bad_mode = await _import(client, me, _xlsx([HEADER]), "everything")
    assert bad_mode.status_code == 422


async def test_another_direction_cannot_import_into_or_over_what_it_cannot_see(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    northern, southern = sales(issuer, north), sales(issuer, south)
    theirs = await _org(
        client, northern, legal_name="Северная Звезда", inn=fresh_inn(), directions=[north]
    )
    content = _xlsx(
        [
            ["Наименование", "ИНН", "Направления"],
            ["Северная Звезда", theirs["inn"], None],  # not visible: created anew in south
            ["Захват", fresh_inn(), north],  # a direction he is not in
        ]
    )
    preview = await _import(client, southern, content, "dry_run")
    assert preview.status_code == 200, preview.text
    rows = _by_row(preview.json())
    assert rows[2]["action"] == "created"
    assert rows[2]["candidates"] == []  # the north one is not his to see
    assert rows[2]["matched_by"] is None
    assert rows[3]["action"] == "skipped"
    assert rows[3]["errors"][0]["kind"] == "forbidden_direction"
    response = await _import(client, southern, content, "valid_rows")
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["skipped"]) == (1, 1)
    again = await client.get(f"/v1/organizations/{theirs['id']}", headers=northern)
    assert again.json()["version"] == 1
    assert await _names(client, northern) == ["Северная Звезда"]
    assert await _names(client, southern) == ["Северная Звезда"]
    mine = await client.get("/v1/organizations", headers=southern)
    assert mine.json()[0]["id"] != theirs["id"]


async def test_seeing_every_direction_does_not_grant_importing_into_it(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    officer = bearer(issuer, f"sec-{north}", roles=["security_officer"])
    new_inn = fresh_inn()
    content = _xlsx([["Наименование", "ИНН"], ["Чужая", new_inn]])
    for what in ("organizations", "persons"):
        # a security officer reads every record and writes none: no import of either kind
        response = await run_import(
            client,
            officer,
            files={"file": ("orgs.xlsx", content, "application/octet-stream")},
            data={"mode": "valid_rows", "directions": north},
            what=what,
        )
        assert response.status_code == 403, (what, response.text)
    direct = await client.post(
        "/v1/organizations", json={"legal_name": "Чужая", "directions": [north]}, headers=officer
    )
    assert direct.status_code == 403, direct.text
    assert await _names(client, sales(issuer, north)) == []


async def test_e_mails_match_in_any_case_and_names_are_compared_within_what_one_sees(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    me = sales(issuer, north)
    domain = fresh_domain()
    stored = await _org(
        client, me, legal_name="Регистр Почты", emails=[f"Office@{domain}"], directions=[north]
    )
    elsewhere = await _org(
        client, sales(issuer, south), legal_name=f"Южный Сосед {south}", directions=[south]
    )
    content = _xlsx(
        [
            HEADER,
            ["Регистр Почты", None, None, f"OFFICE@{domain.upper()}", None],  # 2
            [f"Южный Сосед {south}.", None, None, None, None],  # 3: south's name
        ]
    )
    response = await _import(client, me, content, "dry_run")
    assert response.status_code == 200, response.text
    rows = _by_row(response.json())
    assert rows[2]["matched_by"] == "email"
    assert rows[2]["organization_id"] == stored["id"]
    assert rows[3]["action"] == "created"
    assert rows[3]["candidates"] == []  # south is not his to see
    everyone = bearer(issuer, f"admin-{north}", roles=["admin"])
    seen = await _import(client, everyone, content, "dry_run", directions=north)
    assert seen.status_code == 200, seen.text
    candidates = _by_row(seen.json())[3]["candidates"]
    assert [c["organization_id"] for c in candidates] == [elsewhere["id"]]


async def test_an_export_imports_back_changing_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    org = await _org(
        client,
        me,
        legal_name="=ООО «Формула»",
        phones=[
            "+7 495 500-55-50 доб. 12",
            {"number": "+7 916 123-45-67", "kind": "mobile"},
            {"number": "+7 495 500-55-51", "kind": "fax"},
        ],
        emails=[f"Office@{fresh_domain()}"],
        sites=["a.example", "b.example"],
        tags=["опт, розница", "a;b", "vip"],
        categories=["A"],
        legal_address={
            "text": "Москва, ул. Вавилова, 19",
            "country": "ru",
            "postal_code": "117312",
            "city": "Москва",
        },
        status="client",
        directions=[north],
    )
    shapes = [
        ("xlsx", "ru", "utf-8"),
        ("xlsx", "en", "utf-8"),
        ("csv", "en", "utf-8"),
        ("csv", "ru", "utf-8"),
        ("csv", "ru", "cp1251"),  # statuses in Russian, in Windows-1251
    ]
    for fmt, language, encoding in shapes:
        exported = await client.post(
            "/v1/organizations/export",
            json={"format": fmt, "headers": language, "encoding": encoding},
            headers=me,
        )
        assert exported.status_code == 200, exported.text
        response = await _import(client, me, exported.content, "valid_rows", name=f"o.{fmt}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["rows"], body["unchanged"]) == (1, 1), (fmt, language, encoding, body)
    again = await client.get(f"/v1/organizations/{org['id']}", headers=me)
    assert again.json()["version"] == 1


async def test_an_import_over_an_organization_adds_to_its_lists_unless_told_to_replace(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    inn = fresh_inn()
    org = await _org(
        client,
        me,
        legal_name="Списки",
        inn=inn,
        phones=[{"number": "+7 916 123-45-67", "kind": "mobile"}],
        tags=["VIP"],
        directions=[north],
    )
    content = _xlsx(
        [["Наименование", "ИНН", "Телефон", "Теги"], ["Списки", inn, "+7 495 1234567", "опт"]]
    )
    preview = await _import(client, me, content, "dry_run")
    assert preview.status_code == 200, preview.text
    row = _by_row(preview.json())[2]
    assert row["action"] == "updated"
    assert row["changes"]["tags"] == {"old": ["VIP"], "new": ["VIP", "опт"]}
    merged = await _import(client, me, content, "valid_rows")
    assert merged.json()["updated"] == 1, merged.text
    after = (await client.get(f"/v1/organizations/{org['id']}", headers=me)).json()
    assert [p["number"] for p in after["phones"]] == ["+79161234567", "+74951234567"]
    assert after["tags"] == ["VIP", "опт"]
    replaced = await _import(client, me, content, "valid_rows", lists="replace")
    assert replaced.json()["updated"] == 1, replaced.text
    last = (await client.get(f"/v1/organizations/{org['id']}", headers=me)).json()
    assert [p["number"] for p in last["phones"]] == ["+74951234567"]
    assert last["tags"] == ["опт"]
