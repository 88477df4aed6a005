"""Imports of persons written a chunk at a time (ADR 67) over real HTTP: rows behave as if
imported one after another within a chunk and across chunks, and a person imported is
audited and announced exactly as one created over the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS
from clientele_testkit.processes import ServiceProcess
from directory_testkit import TopicTail, fresh_direction, fresh_inn, run_import, sales

pytestmark = pytest.mark.integration
HEADER = ["Фамилия", "Имя", "Отчество", "Email", "Телефон", "Компания", "ИНН", "Должность"]


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    return {"IMPORT_CHUNK_ROWS": "4"}


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=60) as http:
        yield http


def _csv(rows: list[list[str | None]]) -> bytes:
    return "\r\n".join(";".join(cell or "" for cell in row) for row in [HEADER, *rows]).encode()


async def _import(
    client: httpx.AsyncClient, headers: dict[str, str], rows: list[list[str | None]]
) -> dict[str, Any]:
    done = await run_import(
        client,
        headers,
        files={"file": ("contacts.csv", _csv(rows), "text/csv")},
        data={"mode": "valid_rows"},
        what="persons",
    )
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


async def _post(
    client: httpx.AsyncClient, headers: dict[str, str], path: str, **fields: Any
) -> str:
    made = await client.post(path, json=fields, headers=headers)
    assert made.status_code == 201, made.text
    made_id: str = made.json()["id"]
    return made_id


async def _persons(client: httpx.AsyncClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    found = await client.get("/v1/persons", params={"limit": "500"}, headers=headers)
    assert found.status_code == 200, found.text
    persons: list[dict[str, Any]] = found.json()
    return persons


async def test_rows_of_one_chunk_matching_one_person_see_each_other_s_change(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    inn = fresh_inn()
    org = await _post(
        client, me, "/v1/organizations", legal_name="ООО «Дельта»", inn=inn, directions=[direction]
    )
    anna = await _post(
        client,
        me,
        "/v1/persons",
        last_name="Смирнова",
        emails=[f"a.{direction}@example.org", f"b.{direction}@example.org"],
        directions=[direction],
    )
    body = await _import(
        client,
        me,
        [
            [
                "Смирнова",
                None,
                None,
                f"a.{direction}@example.org",
                "+7 916 555-00-01",
                None,
                inn,
                "Бухгалтер",
            ],
            [
                "Смирнова",
                None,
                "Петровна",
                f"B.{direction}@example.org",
                "+7 916 555-00-01",
                None,
                inn,
                "Бухгалтер",
            ],
        ],
    )
    assert (body["updated"], body["created"], body["skipped"]) == (2, 0, 0)
    first, second = body["report"]
    assert (first["person_id"], second["person_id"]) == (anna, anna)
    assert set(first["changes"]) == {"phones", "employments"}
    # the second row sees the first's phone and employment: it adds only the middle name
    assert set(second["changes"]) == {"middle_name"}
    card = (await client.get(f"/v1/persons/{anna}", headers=me)).json()
    assert card["version"] == 3
    assert card["middle_name"] == "Петровна"
    assert [p["number"] for p in card["phones"]] == ["+79165550001"]
    assert [job["organization_id"] for job in card["employments"]] == [org]
    trail = (await client.get(f"/v1/persons/{anna}/audit", headers=me)).json()
    assert [(e["entity_kind"], e["action"], e["version"]) for e in trail] == [
        ("person", "created", 1),
        ("person", "updated", 2),
        ("employment", "created", 1),
        ("person", "updated", 3),
    ]


async def test_a_person_made_or_changed_by_a_row_is_what_later_rows_and_chunks_see(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    direction = fresh_direction()
    me = sales(issuer, direction)
    office = "+7 495 111-22-33"
    boris = await _post(
        client, me, "/v1/persons", last_name="Петров", phones=[office], directions=[direction]
    )
    mail = f"new.{direction}@example.org"
    body = await _import(
        client,
        me,
        [
            # chunk 1: Boris, matched by his phone, gets an e-mail; a new person
            ["Петров", "Борис", None, f"boris.{direction}@example.org", office, None, None, None],
            ["Новикова", "Нина", None, mail, None, None, None, None],
            # the same e-mail in another case: the row a person was made from, named
            ["Новикова", "Нина", None, mail.upper(), None, None, None, None],
            # a colleague on Boris's office phone with her own e-mail is not Boris, as he has
            # an e-mail now: in his row's chunk, and in the next
            ["Галкина", "Галина", None, f"gala.{direction}@example.org", office, None, None, None],
            ["Коллегова", "Вера", None, f"vera.{direction}@example.org", office, None, None, None],
        ],
    )
    lines = {line["row"]: line for line in body["report"]}
    assert (lines[2]["action"], lines[2]["person_id"], lines[2]["matched_by"]) == (
        "updated",
        boris,
        "phone",
    )
    assert lines[4]["errors"] == [
        {"field": "email", "message": "the same email as row 3", "kind": "duplicate_in_file"}
    ]
    assert (body["created"], body["updated"], body["skipped"]) == (3, 1, 1)
    names = sorted(p["last_name"] for p in await _persons(client, me))
    assert names == ["Галкина", "Коллегова", "Новикова", "Петров"]

    again = await _import(
        client,
        me,
        [
            ["Петров", "Борис", None, f"boris.{direction}@example.org", office, None, None, None],
            ["Новикова", "Нина", None, mail, None, None, None, None],
            ["Галкина", "Галина", None, f"gala.{direction}@example.org", office, None, None, None],
            ["Коллегова", "Вера", None, f"vera.{direction}@example.org", office, None, None, None],
        ],
    )
    assert (again["created"], again["unchanged"]) == (0, 4)


def _without_ids(value: Any) -> Any:
    """A payload or audit change with its generated identifiers and times left out."""
    if isinstance(value, dict):
        return {
            k: _without_ids(v)
            for k, v in value.items()
            if k not in {"person_id", "employment_id", "id", "occurred_at"}
        }
    if isinstance(value, list):
        return [_without_ids(v) for v in value]
    return value


async def _record(
    client: httpx.AsyncClient, headers: dict[str, str], topic: TopicTail, person_id: str
) -> tuple[list[Any], list[Any]]:
    trail = (await client.get(f"/v1/persons/{person_id}/audit", headers=headers)).json()
    events = await topic.events_of(person_id, 2)
    return (
        [
            (e["entity_kind"], e["action"], e["version"], _without_ids(e["changes"]), e["note"])
            for e in trail
        ],
        [(e.type, _without_ids(e.payload), sorted(e.directions or [])) for e in events],
    )


async def test_a_person_imported_is_audited_and_announced_as_one_created_over_the_api(
    client: httpx.AsyncClient, issuer: TokenIssuer, tail: Callable[[str], TopicTail]
) -> None:
    topic = await tail(PERSONS).start()
    direction = fresh_direction()
    me = sales(issuer, direction)
    inn = fresh_inn()
    org = await _post(
        client, me, "/v1/organizations", legal_name="ООО «Эпсилон»", inn=inn, directions=[direction]
    )
    by_api = await _post(
        client,
        me,
        "/v1/persons",
        last_name="Орлова",
        first_name="Ольга",
        emails=[f"olga.{direction}@example.org"],
        phones=["+7 916 555-77-88"],
        directions=[direction],
        employments=[{"organization_id": org, "position": "Директор"}],
    )
    await client.delete(f"/v1/persons/{by_api}", headers={**me, "If-Match": 'W/"1"'})
    body = await _import(
        client,
        me,
        [
            [
                "Орлова",
                "Ольга",
                None,
                f"olga.{direction}@example.org",
                "+7 916 555-77-88",
                None,
                inn,
                "Директор",
            ]
        ],
    )
    assert body["created"] == 1
    imported = next(p["id"] for p in await _persons(client, me) if p["last_name"] == "Орлова")
    assert uuid.UUID(imported) != uuid.UUID(by_api)
    api_trail, api_events = await _record(client, me, topic, by_api)
    trail, events = await _record(client, me, topic, imported)
    assert trail == api_trail[:2]
    assert events == api_events


async def test_a_contacts_file_over_a_megabyte_is_taken_as_an_organizations_file_is(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    me = sales(issuer, fresh_direction())
    # a 20,000-contact export is about 1.5 MB: the upload limit of imports, not the API's 1 MB
    content = _csv([["x" * 100_000] * len(HEADER) for _ in range(2)])
    assert len(content) > 1 << 20
    done = await run_import(
        client,
        me,
        files={"file": ("big.csv", content, "text/csv")},
        data={"mode": "dry_run"},
        what="persons",
    )
    assert done.status_code == 200, done.text
    assert (done.json()["rows"], done.json()["skipped"]) == (2, 2)


async def test_rows_the_chunk_s_writers_would_refuse_are_decided_alone_before_them(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """What the set-based writers of a chunk refuse (an employment at an organization the
    caller does not see or that is deleted, a person moved into a direction he may not write)
    is decided per row before them: the row is skipped or imported without the link, never
    the job failed, and the rest of its chunk is written."""
    direction, elsewhere = fresh_direction(), fresh_direction()
    me, other = sales(issuer, direction), sales(issuer, elsewhere)
    hidden_inn, deleted_inn = fresh_inn(), fresh_inn()
    hidden = await _post(
        client,
        other,
        "/v1/organizations",
        legal_name="ООО «Чужая»",
        inn=hidden_inn,
        directions=[elsewhere],
    )
    deleted = await _post(
        client,
        me,
        "/v1/organizations",
        legal_name="ООО «Закрытая»",
        inn=deleted_inn,
        directions=[direction],
    )
    gone = await client.delete(f"/v1/organizations/{deleted}", headers={**me, "If-Match": 'W/"1"'})
    assert gone.status_code == 204, gone.text
    anna = await _post(
        client,
        me,
        "/v1/persons",
        last_name="Смирнова",
        emails=[f"anna.{direction}@example.org"],
        directions=[direction],
    )
    header = ["Фамилия", "Email", "ИНН", "Должность", "Направления"]
    rows = [
        ["Смирнова", f"anna.{direction}@example.org", None, None, f"{direction}, {elsewhere}"],
        ["Орлов", f"orlov.{direction}@example.org", hidden_inn, "Директор", None],
        ["Зайцева", f"zaytseva.{direction}@example.org", deleted_inn, "Юрист", None],
        ["Чужой", f"alien.{direction}@example.org", None, None, elsewhere],
        ["Волков", f"volkov.{direction}@example.org", None, None, None],
    ]
    content = "\r\n".join(";".join(cell or "" for cell in row) for row in [header, *rows])
    done = await run_import(
        client,
        me,
        files={"file": ("contacts.csv", content.encode(), "text/csv")},
        data={"mode": "valid_rows", "directions": direction},
        what="persons",
    )
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["created"], body["updated"], body["skipped"]) == (3, 0, 2)
    lines = {line["row"]: line for line in body["report"]}
    assert (lines[2]["action"], [e["kind"] for e in lines[2]["errors"]]) == (
        "skipped",
        ["forbidden-direction"],
    )
    assert (lines[5]["action"], [e["kind"] for e in lines[5]["errors"]]) == (
        "skipped",
        ["forbidden_direction"],
    )
    for row in (3, 4):
        assert [w["kind"] for w in lines[row]["warnings"]] == ["unknown_organization"]
        assert lines[row]["organization_id"] is None
    mine = {p["last_name"]: p for p in await _persons(client, me)}
    assert sorted(mine) == ["Волков", "Зайцева", "Орлов", "Смирнова"]
    assert [p["employments"] for p in mine.values()] == [[], [], [], []]
    card = (await client.get(f"/v1/persons/{anna}", headers=me)).json()
    assert (card["version"], card["directions"]) == (1, [direction])
    trail = (await client.get(f"/v1/persons/{anna}/audit", headers=me)).json()
    assert [e["action"] for e in trail] == ["created"]
    staff = await client.get("/v1/persons", params={"organization_id": hidden}, headers=other)
    assert staff.json() == []
