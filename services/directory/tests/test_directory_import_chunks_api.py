"""Import across chunk boundaries (the service here matches and writes two rows at a time): rows
behave as if imported one after another whichever chunk they are in — duplicates in the file,
similar names of earlier rows, two updates of one organization — and a bad row or a damaged
file in a later chunk leaves nothing written."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from clientele_directory.blocking import organization_blocked_expr
from clientele_directory.organizations.rules import Organization, created_changes
from clientele_directory.publishing import organization_created
from clientele_directory.state import OrganizationSnapshots
from clientele_directory.tables import organizations
from clientele_directory.tables import outbox as outbox_table
from clientele_directory.values import STORED
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import create_engine
from clientele_shared.events.catalog import ORGANIZATIONS, ORGANIZATIONS_STATE, REGISTRY
from clientele_shared.events.envelope import Actor
from clientele_shared.events.outbox import Outbox
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    TopicTail,
    admin,
    fresh_direction,
    fresh_domain,
    fresh_inn,
    problem,
    run_import,
    sales,
)
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

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


async def _unwanted_inn(client: httpx.AsyncClient, issuer: TokenIssuer) -> str:
    """A fresh INN the unwanted counterparty register refuses."""
    refused = fresh_inn()
    entry = await client.post(
        "/v1/unwanted",
        json={"inn": refused, "reason": "Не платит", "decided_by": "Совет директоров"},
        headers=admin(issuer),
    )
    assert entry.status_code == 201, entry.text
    return refused


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


async def test_a_chunks_similar_names_are_those_before_the_next_chunk_writes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    """A chunk's similar names are read while the next chunk's rows are decided (ADR 72), yet
    before that chunk writes: a row is compared with the names as they were when it was
    imported, never with a rename a later row makes."""
    north = fresh_direction()
    me = sales(issuer, north)
    inn = fresh_inn()
    existing = await client.post(
        "/v1/organizations",
        json={"legal_name": "Другая Фирма", "inn": inn, "directions": [north]},
        headers=me,
    )
    assert existing.status_code == 201, existing.text
    content = _xlsx(
        [
            ["Наименование", "ИНН"],
            ["Ромашка Плюс", None],  # 2   chunk 1
            ["Лютик", None],  # 3
            ["Ромашка Плюс", inn],  # 4   chunk 2: renames the existing organization
            ["Василёк", None],  # 5
            ["Ромашка-Плюс", None],  # 6   chunk 3
        ]
    )
    for mode in ("dry_run", "valid_rows"):
        response = await _import(client, me, content, mode, "orgs.xlsx")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["rows"], body["created"], body["updated"]) == (5, 4, 1)
        rows = _by_row(body)
        assert rows[4]["action"] == "updated"
        # row 2 saw «Другая Фирма»; row 6 sees row 2 and the organization row 4 renamed
        assert rows.get(2, {"candidates": []})["candidates"] == []
        similar = {c["organization_id"] for c in rows[6]["candidates"]}
        assert rows[4]["organization_id"] == existing.json()["id"]
        assert existing.json()["id"] in similar
        assert len(similar) == 2
        if mode == "dry_run":
            assert similar == {existing.json()["id"], rows[2]["organization_id"]}


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


async def test_the_state_records_of_an_import_are_what_a_read_back_gives(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    infra: Infrastructure,
    tail: Callable[[str], TopicTail],
) -> None:
    """The import builds the state records of what it wrote instead of reading them back
    (ADR 61): each one equals the snapshot read from the database, the blocked flag and the
    timestamps included, and the snapshots of one organization are numbered in order."""
    north = fresh_direction()
    me = sales(issuer, north)
    mail = f"info@{fresh_domain()}"
    existing = await client.post(
        "/v1/organizations",
        json={"legal_name": "Было", "inn": fresh_inn(), "emails": [mail], "directions": [north]},
        headers=me,
    )
    assert existing.status_code == 201, existing.text
    org = existing.json()
    refused = await _unwanted_inn(client, issuer)
    states = await tail(ORGANIZATIONS_STATE).start()
    content = _xlsx(
        [
            ["Наименование", "ИНН", "E-mail", "Телефон", "Адрес"],
            ["Стало", org["inn"], None, "+7 495 111-22-33", None],  # 2 chunk 1: an update
            ["Новая", fresh_inn(), f"info@{fresh_domain()}", "8 (912) 555-01-02", "Москва"],
            ["Нежеланная", refused, None, None, None],  # 4 chunk 2: created blocked
            ["Стало", None, mail, "+7 495 111-22-44", None],  # 5: the update again
            ["Третья", None, None, None, "г. Казань, ул. Баумана, д. 1"],  # 6 chunk 3
        ]
    )
    response = await _import(client, me, content, "valid_rows", "o.xlsx")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["updated"]) == (3, 2), body
    listed = await client.get("/v1/organizations?limit=500", headers=me)
    by_name = {item["legal_name"]: item["id"] for item in listed.json()}
    ids = [by_name[name] for name in ("Стало", "Новая", "Нежеланная", "Третья")]
    assert ids[0] == org["id"]
    await states.wait_for(lambda e: e.aggregate_id == org["id"] and e.payload["version"] == 3)
    published = {key: await states.events_of(key, 1) for key in ids[1:]}
    published[org["id"]] = updates = [
        e for e in states.seen if e.aggregate_id == org["id"] and e.payload["version"] > 1
    ]
    assert [e.payload["version"] for e in updates] == [2, 3]
    assert updates[0].payload["revision"] < updates[1].payload["revision"]
    assert published[ids[2]][0].payload["blocked"] is True

    engine = create_engine(infra.test_database_url("directory"), pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            outbox = Outbox("directory", REGISTRY, outbox_table)
            read_back = await OrganizationSnapshots(outbox)(session, ids)
            await session.rollback()
    finally:
        await engine.dispose()
    assert len(read_back) == len(ids)
    for snapshot in read_back:
        last = published[snapshot.aggregate_id][-1]
        assert last.type == snapshot.type
        assert last.directions == snapshot.directions
        assert {**last.payload, "revision": 0} == {**snapshot.payload, "revision": 0}
        assert last.payload["revision"] < snapshot.payload["revision"]


async def test_what_the_import_builds_for_new_organizations_is_what_the_models_make(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    infra: Infrastructure,
    tail: Callable[[str], TopicTail],
) -> None:
    """The import builds the created events and audit entries of its new organizations
    without a model each (ADR 70): each equals what ``organization_created`` and ``created_changes``
    make of the organization read back — addresses, several phones, sites, tags, custom
    attributes, unicode and the blocked flag included."""
    north = fresh_direction()
    subject = f"importer-{uuid.uuid4().hex[:8]}"
    me = sales(issuer, north, subject=subject)
    word, number = (f"{kind}_{uuid.uuid4().hex[:8]}" for kind in ("word", "number"))
    for key, kind in ((word, "string"), (number, "number")):
        defined = await client.post(
            "/v1/attributes",
            json={"entity_kind": "organization", "key": key, "label": key, "type": kind},
            headers=admin(issuer),
        )
        assert defined.status_code == 201, defined.text
    refused = await _unwanted_inn(client, issuer)
    created_tail = await tail(ORGANIZATIONS).start()
    header = ["Наименование", "ИНН", "КПП", "E-mail", "Телефон", "Адрес", "Сайт", "Теги"]
    content = _xlsx(
        [
            [*header, word, number],
            [
                "ООО «Ёлка» 🎄",
                fresh_inn(),
                "773301001",
                f"Info@{fresh_domain()}; sales@{fresh_domain()}",
                "+7 495 111-22-33 доб. 12; 8 (912) 555-01-02",
                "125009, г. Москва, ул. Тверская, д. 7",
                "elka.example.ru",
                "VIP; опт",
                "крупный «клиент»",
                "12.5",
            ],
            ["Нежеланная", refused, None, None, None, None, None, None, None, None],
            ["Без всего", None, None, None, None, None, None, None, None, "0"],
        ]
    )
    response = await _import(client, me, content, "valid_rows", "o.xlsx")
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 3, response.text
    listed = await client.get("/v1/organizations?limit=500", headers=me)
    ids = [item["id"] for item in listed.json()]
    published = {key: (await created_tail.events_of(key, 1))[0] for key in ids}

    engine = create_engine(infra.test_database_url("directory"), pool_size=1)
    try:
        async with AsyncSession(engine) as session:
            rows = (
                await session.execute(
                    select(organizations, organization_blocked_expr().label("blocked")).where(
                        organizations.c.id.in_([uuid.UUID(i) for i in ids])
                    )
                )
            ).all()
            await session.rollback()
    finally:
        await engine.dispose()
    outbox = Outbox("directory", REGISTRY, outbox_table)
    actor = Actor(subject=subject, kind="user")
    blocked = []
    for row in rows:
        org = Organization.model_validate(row, from_attributes=True, context=STORED)
        expected = organization_created(outbox, org, actor)
        got = published[str(org.id)]
        assert (got.type, got.schema_version, got.producer) == (
            expected.type,
            expected.schema_version,
            expected.producer,
        )
        assert (got.actor, got.directions, got.aggregate_id) == (
            expected.actor,
            expected.directions,
            expected.aggregate_id,
        )
        assert got.payload == expected.payload
        audit = (await client.get(f"/v1/organizations/{org.id}/audit", headers=me)).json()
        entries = [e for e in audit if e["action"] == "created"]  # a blocked one: "blocked" too
        assert [(e["version"], e["note"]) for e in entries] == [(1, "import")]
        assert entries[0]["changes"] == created_changes(org)
        assert entries[0]["actor_subject"] == subject
        blocked.append(org.blocked)
    assert sorted(blocked) == [False, False, True]
    full = next(p.payload for p in published.values() if p.payload["tags"])
    assert len(full["phones"]) == 2
    assert "Тверская" in json.dumps(full["actual_address"], ensure_ascii=False)
    assert full["attributes"] == {word: "крупный «клиент»", number: 12.5}
