"""Imports of persons over real HTTP (ADR 63): amoCRM and Bitrix24 contact exports imported as
the generator's truth says, matching by e-mail then phone within the caller's sight, links to
organizations, audit and events as the API's, ambiguous and ugly rows reported, the three
modes, a persons sheet beside a companies sheet, limits and two identical imports at once."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS
from clientele_testkit.import_generator import AMOCRM_CONTACTS, BITRIX24_CONTACTS, generate_persons
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    TopicTail,
    fresh_direction,
    fresh_inn,
    import_report,
    problem,
    run_import,
    sales,
    wait_for_import,
)
from openpyxl import Workbook, load_workbook

pytestmark = pytest.mark.integration
MAX_ROWS = 300


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    return {"IMPORT_MAX_ROWS": str(MAX_ROWS), "IMPORT_CHUNK_ROWS": "25"}


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=60) as http:
        yield http


def _xlsx(sheets: dict[str, list[list[Any]]]) -> bytes:
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _csv(rows: list[list[str | None]]) -> bytes:
    return "\r\n".join(";".join(cell or "" for cell in row) for row in rows).encode() + b"\r\n"


async def _import(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    mode: str,
    name: str = "contacts.xlsx",
) -> httpx.Response:
    return await run_import(
        client,
        headers,
        files={"file": (name, content, "application/octet-stream")},
        data={"mode": mode},
        what="persons",
    )


async def _org(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, direction: str, **more: Any
) -> str:
    made = await client.post(
        "/v1/organizations",
        json={"legal_name": name, "directions": [direction], **more},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    org_id: str = made.json()["id"]
    return org_id


async def _person(client: httpx.AsyncClient, headers: dict[str, str], **fields: Any) -> str:
    made = await client.post("/v1/persons", json=fields, headers=headers)
    assert made.status_code == 201, made.text
    person_id: str = made.json()["id"]
    return person_id


async def _persons(
    client: httpx.AsyncClient, headers: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    found = await client.get("/v1/persons", params={"limit": "500", **params}, headers=headers)
    assert found.status_code == 200, found.text
    persons: list[dict[str, Any]] = found.json()
    return persons


async def test_an_amocrm_export_is_imported_as_the_generator_s_truth_says(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(PERSONS).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    companies = [f"ООО «Альфа-{direction}»", f"АО «Бета-{direction}»"]
    org_ids = {name: await _org(client, me, name, direction) for name in companies}
    generated = generate_persons(80, companies)
    content = _xlsx({"Контакты": [generated.header, *generated.rows]})
    truth = generated.truth
    ok = [n for n, t in truth.items() if t.outcome == "ok"]

    dry = await _import(client, me, content, "dry_run")
    assert dry.status_code == 200, dry.text
    assert (dry.json()["created"], dry.json()["skipped"]) == (len(ok), len(truth) - len(ok))
    assert await _persons(client, me) == []

    done = await _import(client, me, content, "valid_rows")
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["created"], body["skipped"]) == (len(ok), len(truth) - len(ok))
    lines = {line["row"]: line for line in body["report"]}
    for number, expected in truth.items():
        if expected.outcome == "error":
            assert lines[number]["errors"][0]["field"] == expected.field, lines[number]
        elif expected.outcome == "duplicate":
            assert lines[number]["errors"] == [
                {
                    "field": expected.field,
                    "message": f"the same {expected.field} as row {expected.earlier}",
                    "kind": "duplicate_in_file",
                }
            ]
        elif expected.warning is not None:
            assert lines[number]["action"] == "created"
            assert [w["kind"] for w in lines[number]["warnings"]] == [expected.warning]
            assert lines[number]["organization_id"] is None
        else:
            assert number not in lines  # created without a word
    persons = await _persons(client, me)
    assert len(persons) == len(ok)
    assert not any(any(p["consent"].values()) for p in persons)
    for name, org_id in org_ids.items():
        linked = await _persons(client, me, organization_id=org_id)
        assert len(linked) == sum(1 for n in ok if truth[n].company == name)
        assert {job["position"] for p in linked for job in p["employments"]} == {"Менеджер"}

    first = next(n for n in ok if truth[n].company is not None)
    mail = str(generated.rows[first - 2][8]).lower()
    person = next(p for p in persons if [e.lower() for e in p["emails"]] == [mail])
    trail = (await client.get(f"/v1/persons/{person['id']}/audit", headers=me)).json()
    assert [(e["entity_kind"], e["action"]) for e in trail] == [
        ("person", "created"),
        ("employment", "created"),
    ]
    events = await topic.events_of(person["id"], 2)
    assert [(e.type, e.payload.get("change")) for e in events] == [
        ("directory.person.created", None),
        ("directory.employment.changed", "created"),
    ]

    again = await _import(client, me, content, "valid_rows")
    assert again.status_code == 200, again.text
    assert (again.json()["created"], again.json()["unchanged"]) == (0, len(ok))
    assert len(await _persons(client, me)) == len(ok)


async def test_a_bitrix24_row_updates_the_person_it_matches_never_one_out_of_sight(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(PERSONS).start()
    direction, elsewhere = fresh_direction(), fresh_direction()
    me, other = sales(issuer, direction), sales(issuer, elsewhere)
    inn = fresh_inn()
    org = await _org(client, me, f"ООО «Гамма-{direction}»", direction, inn=inn)
    anna = await _person(
        client,
        me,
        last_name="Смирнова",
        first_name="Анна",
        emails=[f"anna.{direction}@example.org"],
        directions=[direction],
    )
    boris = await _person(
        client,
        other,
        last_name="Петров",
        emails=[f"boris.{direction}@example.org"],
        directions=[elsewhere],
    )
    header = [*BITRIX24_CONTACTS, "ИНН"]
    rows: list[list[str | None]] = [
        [
            "1",
            "Анна",
            "Ивановна",
            "Смирнова",
            "ООО «Другое название»",
            "Бухгалтер",
            None,
            "+7 916 555-12-34",
            f"ANNA.{direction}@EXAMPLE.ORG",
            None,
            "Иван Менеджеров",
            "08.03.1990",
            inn,
        ],
        ["2", "Борис", None, "Петров", None, None, None, None, f"boris.{direction}@example.org"],
    ]
    done = await _import(client, me, _csv([header, *rows]), "valid_rows", name="bitrix.csv")
    assert done.status_code == 200, done.text
    assert (done.json()["created"], done.json()["updated"]) == (1, 1)
    line = done.json()["report"][0]
    assert (line["row"], line["action"], line["matched_by"]) == (2, "updated", "email")
    assert (line["person_id"], line["organization_id"]) == (anna, org)
    assert set(line["changes"]) == {"middle_name", "phones", "birthday", "employments"}

    card = (await client.get(f"/v1/persons/{anna}", headers=me)).json()
    assert card["emails"] == [f"anna.{direction}@example.org"]
    assert [(p["number"], p["kind"]) for p in card["phones"]] == [("+79165551234", "mobile")]
    assert [(j["organization_id"], j["position"]) for j in card["employments"]] == [
        (org, "Бухгалтер")
    ]
    assert card["version"] == 2
    trail = (await client.get(f"/v1/persons/{anna}/audit", headers=me)).json()
    assert [(e["entity_kind"], e["action"], e["version"]) for e in trail][-2:] == [
        ("person", "updated", 2),
        ("employment", "created", 1),
    ]
    events = await topic.events_of(anna, 3)
    assert [(e.type, e.payload.get("change")) for e in events][1:] == [
        ("directory.person.updated", None),
        ("directory.employment.changed", "created"),
    ]
    # the person of another direction with Boris's e-mail is neither matched nor touched
    assert (await client.get(f"/v1/persons/{boris}", headers=other)).json()["version"] == 1
    mine = [p for p in await _persons(client, me) if p["last_name"] == "Петров"]
    assert [p["directions"] for p in mine] == [[direction]]


RU_AMBIGUOUS = "телефон: совпадает с 2 людьми; сначала объедините их"


async def test_ambiguous_and_ugly_rows_are_reported_in_three_modes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    for name in ("Первый", "Второй"):
        await _person(
            client, me, last_name=name, phones=["+7 495 555-66-77"], directions=[direction]
        )
    header = ["Фамилия", "Имя", "Телефон", "Дата рождения", "Любимый цвет", "Согласие на рассылку"]
    rows: list[list[str | None]] = [
        ["Неясный", "Икс", "+7 495 555-66-77", None, None, None],
        ["Đặng", "Zoë 🙂", None, "01.01.1990", "синий", "да"],
        ["Козлов", "Пётр", None, "31.02.1990", None, None],
        ["Иванов", "Иван", None, None, None, None],
    ]
    # a NUL in a CSV makes it no text file (read as UTF-16 cut short): refused, nothing written
    nul = _csv([header, ["Пет\x00ров", "Иван"], *rows])
    unreadable = problem(await _import(client, me, nul, "valid_rows", name="nul.csv"), 422)
    assert unreadable["type"].endswith("unreadable-file")
    content = _xlsx({"Лист1": [header, *rows]})

    rejected = await _import(client, me, content, "all_or_nothing")
    assert rejected.status_code == 422, rejected.text
    assert rejected.json()["state"] == "rejected"
    assert len(await _persons(client, me)) == 2
    report = rejected.json()["report"]
    assert [(line["row"], line["errors"][0]["kind"]) for line in report if line["errors"]] == [
        (2, "ambiguous"),
        (4, "date"),
    ]

    queued = await client.post(
        "/v1/persons/import",
        files={"file": ("ugly.xlsx", content, "application/octet-stream")},
        data={"mode": "valid_rows"},
        headers=me,
    )
    location = queued.headers["Location"]
    job = await wait_for_import(client, me, location)
    assert job["kind"] == "person"
    assert (job["counts"]["created"], job["counts"]["skipped"]) == (2, 2)
    lines = await import_report(client, me, location)
    assert [line["row"] for line in lines] == [2, 4]  # errors first
    russian = await client.get(
        f"{location}/report", headers={**me, "Accept-Language": "ru"}, params={"limit": "1"}
    )
    assert russian.json()["items"][0]["errors"][0]["message"] == RU_AMBIGUOUS
    workbook = await client.get(f"{location}/report.xlsx", headers=me)
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    assert sheet is not None
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0][0] == "Строка / Row"
    assert cells[0][-1] == "Причина / Reason"
    assert [(row[0], row[1]) for row in cells[1:]] == [(2, "Неясный"), (4, "Козлов")]

    persons = {p["last_name"]: p for p in await _persons(client, me)}
    assert persons["Đặng"]["first_name"] == "Zoë 🙂"
    assert persons["Đặng"]["consent"] == {"email": True, "sms": False, "phone": False}
    assert persons["Đặng"]["birthday"] == "1990-01-01"
    assert persons["Иванов"]["consent"] == {"email": False, "sms": False, "phone": False}
    problem(await client.get(location, headers=sales(issuer, fresh_direction())), 404)


async def test_the_persons_sheet_beside_a_companies_sheet_and_the_way_to_import_it(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    content = _xlsx(
        {
            "Компании": [["Наименование", "ИНН"], ["ООО «Альфа»", fresh_inn()]],
            "Контакты": [AMOCRM_CONTACTS, ["1", "Иван Петров", "Иван", "Петров"]],
        }
    )
    queued = await client.post(
        "/v1/persons/import",
        files={"file": ("both.xlsx", content, "application/octet-stream")},
        data={"mode": "valid_rows"},
        headers=me,
    )
    job = await wait_for_import(client, me, queued.headers["Location"])
    assert job["source"]["sheet"] == "Контакты"
    assert job["counts"]["created"] == 1

    contacts = _xlsx({"Контакты": [AMOCRM_CONTACTS, ["2", "Анна Ёлкина", "Анна", "Ёлкина"]]})
    as_companies = await client.post(
        "/v1/organizations/import",
        files={"file": ("amo.xlsx", contacts, "application/octet-stream")},
        data={"mode": "valid_rows"},
        headers=me,
    )
    refused = await wait_for_import(client, me, as_companies.headers["Location"])
    assert refused["problem"]["type"].endswith("persons-file")
    assert "send it to POST /v1/persons/import" in refused["problem"]["detail"]

    companies_only = _xlsx({"Компании": [["Наименование", "ИНН"], ["ООО «Бета»", fresh_inn()]]})
    failed = await _import(client, me, companies_only, "valid_rows")
    assert problem(failed, 422)["detail"].startswith(
        "The file cannot be read: no column names the person"
    )
    assert [p["last_name"] for p in await _persons(client, me)] == ["Петров"]
    forbidden = await client.post(
        "/v1/persons/import",
        files={"file": ("x.xlsx", contacts, "application/octet-stream")},
        data={"mode": "valid_rows", "directions": fresh_direction()},
        headers=me,
    )
    problem(forbidden, 403)


async def test_limits_first_and_two_identical_imports_at_once_double_nobody(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    header = ["Фамилия", "Email"]
    too_many = _csv([header, *([f"Петров{i}", f"p{i}@x.example"] for i in range(MAX_ROWS + 1))])
    refused = await _import(client, me, too_many, "valid_rows", name="big.csv")
    assert (
        f"more than {MAX_ROWS:,} rows (the file has {MAX_ROWS + 1:,} rows)"
        in problem(refused, 422)["detail"]
    )

    rows = [[f"Петров{i}", f"p{i}.{direction}@x.example"] for i in range(40)]
    content = _csv([header, *rows])
    both = await asyncio.gather(
        *(_import(client, me, content, "valid_rows", name="same.csv") for _ in range(2))
    )
    assert sorted((r.json()["created"], r.json()["unchanged"]) for r in both) == [(0, 40), (40, 0)]
    assert len(await _persons(client, me)) == 40
