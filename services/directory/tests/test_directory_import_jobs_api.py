"""Imports as background jobs (ADR 41): 202 and a job to poll, the report a page at a time with
the errors first and as an .xlsx of the failed rows, cancel, the directions that see a job,
two identical imports at once, limits checked before any row is read, and a job whose process
died taken up by the running one; jobs finished more than the kept days ago removed with their
report and file (ADR 58)."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from clientele_directory.imports import queries
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import async_url
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess
from directory_testkit import (
    admin,
    fresh_direction,
    fresh_inn,
    import_report,
    run_import,
    sales,
    wait_for_import,
)
from openpyxl import Workbook, load_workbook
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

pytestmark = pytest.mark.integration
MAX_ROWS = 400


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    return {
        "IMPORT_MAX_ROWS": str(MAX_ROWS),
        "IMPORT_CHUNK_ROWS": "50",
        "IMPORT_JOB_LEASE_SECONDS": "2",
        "IMPORT_JOB_SWEEP_SECONDS": "0.5",
        "IMPORT_JOB_PRUNE_ROWS": "50",
    }


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


def _csv(rows: list[list[str]]) -> bytes:
    return "\r\n".join(";".join(row) for row in rows).encode() + b"\r\n"


async def _queue(
    client: httpx.AsyncClient, headers: dict[str, str], content: bytes, mode: str, name: str
) -> str:
    queued = await client.post(
        "/v1/organizations/import",
        files={"file": (name, content, "application/octet-stream")},
        data={"mode": mode},
        headers=headers,
    )
    assert queued.status_code == 202, queued.text
    assert queued.json()["state"] in ("queued", "running")
    location: str = queued.headers["Location"]
    return location


async def _count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    response = await client.get("/v1/organizations?limit=500", headers=headers)
    assert response.status_code == 200, response.text
    return len(response.json())


async def test_a_job_reports_progress_errors_first_and_the_failed_rows_as_xlsx(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    header = ["Наименование", "ИНН", "Примечание"]
    rows = [
        header,
        ["Первая", fresh_inn(), "a"],
        ["Плохая", "1234567890", "@SUM(A1)"],
        ["Вторая", fresh_inn(), None],
        [None, None, None],
        ["Третья", fresh_inn(), "c"],
        ["", "77070838", "d"],
    ]
    location = await _queue(client, me, _xlsx(rows), "valid_rows", "orgs.xlsx")
    job = await wait_for_import(client, me, location)
    assert job["state"] == "succeeded", job
    assert job["total_rows"] == 6
    assert job["rows_read"] == 6
    assert job["counts"] == {"rows": 5, "created": 3, "updated": 0, "unchanged": 0, "skipped": 2}
    assert job["finished_at"] is not None
    assert job["problem"] is None

    first = await client.get(f"{location}/report", params={"limit": 1}, headers=me)
    assert first.status_code == 200, first.text
    assert [line["row"] for line in first.json()["items"]] == [3]
    second = await client.get(
        f"{location}/report", params={"limit": 1, "after": first.json()["next_cursor"]}, headers=me
    )
    assert [line["row"] for line in second.json()["items"]] == [7]
    assert all(line["errors"] for line in (await import_report(client, me, location))[:2])

    download = await client.get(f"{location}/report.xlsx", headers=me)
    assert download.status_code == 200, download.text
    sheet = load_workbook(io.BytesIO(download.content), read_only=True).active
    assert sheet is not None
    got = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert got[0] == ["Строка / Row", *header, "Причина / Reason"]
    assert [row[:4] for row in got[1:]] == [
        [3, "Плохая", "1234567890", "'@SUM(A1)"],  # a formula is neutralised
        [7, None, "77070838", "d"],
    ]
    assert all("inn" in str(row[4]) for row in got[1:])


async def test_only_the_jobs_directions_see_it(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north, south = fresh_direction(), fresh_direction()
    me, colleague, stranger = sales(issuer, north), sales(issuer, north), sales(issuer, south)
    content = _csv([["Наименование", "ИНН"], ["Своя", fresh_inn()]])
    location = await _queue(client, me, content, "dry_run", "o.csv")
    await wait_for_import(client, me, location)
    assert (await client.get(location, headers=colleague)).status_code == 200
    for path in (location, f"{location}/report", f"{location}/report.xlsx"):
        assert (await client.get(path, headers=stranger)).status_code == 404, path
    refused = await client.post(f"{location}/cancel", headers=stranger)
    assert refused.status_code == 404, refused.text
    elsewhere = await client.post(
        "/v1/organizations/import",
        files={"file": ("o.csv", content, "text/csv")},
        data={"mode": "dry_run", "directions": north},
        headers=stranger,
    )
    assert elsewhere.status_code == 403, elsewhere.text


async def test_two_identical_imports_at_once_create_each_organization_once(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    rows = [["Наименование", "ИНН"], *[[f"Близнец {n}", fresh_inn()] for n in range(120)]]
    content = _xlsx(rows)
    first, second = await asyncio.gather(
        *(
            run_import(
                client,
                me,
                files={"file": ("same.xlsx", content, "application/octet-stream")},
                data={"mode": "valid_rows"},
            )
            for _ in range(2)
        )
    )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    created = sorted([first.json()["created"], second.json()["created"]])
    assert created == [0, 120]
    assert sorted([first.json()["unchanged"], second.json()["unchanged"]]) == [0, 120]
    assert await _count(client, me) == 120


async def test_a_cancelled_import_writes_nothing(
    client: httpx.AsyncClient, issuer: TokenIssuer, infra: Infrastructure
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    rows = [["Наименование", "ИНН"], *[[f"Отмена {n}", fresh_inn()] for n in range(100)]]
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    try:  # writing imports wait for this lock: the job is caught running
        await conn.execute("SELECT pg_advisory_lock(hashtext('clientele-directory-import'))")
        location = await _queue(client, me, _csv(rows), "valid_rows", "o.csv")
        await _opened(client, me, location)
        cancelled = await client.post(f"{location}/cancel", headers=me)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["cancel_requested"] is True
        job = await wait_for_import(client, me, location)
        child = await conn.fetchval(
            "SELECT worker_pid FROM import_jobs WHERE id = $1", uuid.UUID(job["id"])
        )
    finally:
        await conn.close()
    assert job["state"] == "cancelled", job
    assert child is not None
    assert not _exists(child)  # the job's process was stopped (ADR 62)
    assert await _count(client, me) == 0


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def _opened(client: httpx.AsyncClient, headers: dict[str, str], location: str) -> None:
    """Wait until the job has counted its file's rows (it is running)."""
    for _ in range(600):
        if (await client.get(location, headers=headers)).json()["total_rows"] is not None:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the import never started")


def _far_row(number: int) -> bytes:
    """An .xlsx whose second row is numbered ``number`` (the rows between are left out)."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Наименование"])
    sheet.cell(row=number, column=1, value="Далеко")
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("blank.csv", _csv([["Наименование"], ["А"]]) + b"\r\n" * MAX_ROWS),
        ("numbered.xlsx", _far_row(MAX_ROWS + 5)),
    ],
)
async def test_rows_are_counted_before_any_is_read(
    client: httpx.AsyncClient, issuer: TokenIssuer, name: str, content: bytes
) -> None:
    me = sales(issuer, fresh_direction())
    response = await run_import(
        client,
        me,
        files={"file": (name, content, "application/octet-stream")},
        data={"mode": "valid_rows"},
    )
    body = response.json()
    assert response.status_code == 422, response.text
    assert body["type"].endswith("unreadable-file")
    assert f"more than {MAX_ROWS} rows" in body["detail"]
    assert body["rows"] == 0  # refused before the first row
    assert await _count(client, me) == 0


async def test_a_job_whose_process_died_is_taken_up_or_failed(
    client: httpx.AsyncClient, issuer: TokenIssuer, infra: Infrastructure
) -> None:
    north = fresh_direction()
    me = sales(issuer, north, subject=f"user-{north}")
    principal = {"subject": f"user-{north}", "roles": ["sales"], "directions": [north]}
    content = _csv([["Наименование", "ИНН"], ["Сирота", fresh_inn()]])
    resumed, given_up = uuid.uuid4(), uuid.uuid4()
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    try:
        for job_id, attempts in ((resumed, 1), (given_up, 3)):
            await conn.execute(
                "INSERT INTO import_jobs (id, state, mode, filename, directions, overrides,"
                " principal, created_by, file_bytes, owner, lease_until, attempts)"
                " VALUES ($1, 'running', 'valid_rows', 'o.csv', $2, '{}', $3, $4, $5,"
                " 'a-process-that-died', now() - interval '1 minute', $6)",
                job_id,
                [north],
                json.dumps(principal),
                principal["subject"],
                len(content),
                attempts,
            )
            await conn.execute(
                "INSERT INTO import_job_files (job_id, part, data) VALUES ($1, 0, $2)",
                job_id,
                content,
            )
    finally:
        await conn.close()
    job = await wait_for_import(client, me, f"/v1/organizations/imports/{resumed}")
    assert (job["state"], job["attempts"], job["counts"]["created"]) == ("succeeded", 2, 1)
    failed = await wait_for_import(client, me, f"/v1/organizations/imports/{given_up}")
    assert failed["state"] == "failed", failed
    assert failed["problem"]["type"].endswith("import-interrupted")
    assert await _count(client, me) == 1


async def test_a_bitrix24_file_on_a_second_sheet_names_its_responsible_by_name(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    root = admin(issuer)
    north, south = fresh_direction(), fresh_direction()
    for code in (north, south):
        made = await client.post("/v1/directions", json={"code": code, "name": code}, headers=root)
        assert made.status_code == 201, made.text
    tag = uuid.uuid4().hex[:6]
    seen, unseen = f"Анна Смирнова-{tag}", f"Пётр Кузнецов-{tag}"
    employees = {}
    for name, code in ((seen, north), (unseen, south)):
        made = await client.post(
            "/v1/employees",
            json={
                "email": f"{uuid.uuid4().hex[:8]}@corp.example",
                "name": name,
                "roles": ["sales"],
                "directions": [code],
            },
            headers=root,
        )
        assert made.status_code == 201, made.text
        employees[name] = made.json()["id"]
    me = sales(issuer, north)
    workbook = Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Инструкция"
    notes.append(["Выгрузка компаний из Битрикс24"])
    data = workbook.create_sheet("Компании")
    data.append(["Компании на 06.12.2026"])
    data.append(
        ["ID", "Название компании", "ИНН", "Рабочий телефон", "Рабочий e-mail", "Ответственный"]
    )
    first, second = fresh_inn(), fresh_inn()
    data.append(
        [
            "101",
            "ООО «Первая»",
            first,
            "+7 495 100-00-01 доб. 12",
            "a@first.example",
            f"смирнова-{tag} анна",
        ]
    )
    data.append(["102", "ООО «Вторая»", second, None, None, unseen])
    out = io.BytesIO()
    workbook.save(out)
    location = await _queue(client, me, out.getvalue(), "valid_rows", "bitrix.xlsx")
    job = await wait_for_import(client, me, location)
    assert job["state"] == "succeeded", job
    assert job["source"] == {
        "sheet": "Компании",
        "header_row": 2,
        "header_rows": 1,
        "encoding": None,
    }
    assert (job["counts"]["created"], job["counts"]["skipped"]) == (1, 1)
    report = await import_report(client, me, location)
    refused = next(line for line in report if line["row"] == 4)
    assert [(e["field"], e["kind"]) for e in refused["errors"]] == [
        ("responsible_employee_id", "unknown_reference")
    ]
    found = await client.get("/v1/organizations", headers=me)  # a new direction: only these
    assert found.status_code == 200, found.text
    [created] = found.json()
    assert created["inn"] == first
    assert created["responsible_employee_id"] == employees[seen]
    phone = created["phones"][0]
    assert (phone["number"], phone["extension"]) == ("+74951000001", "12")


async def test_messages_come_in_the_callers_language_with_the_same_codes(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    me = sales(issuer, fresh_direction())
    ru = {**me, "Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"}
    rows = [["Наименование", "ИНН"], ["Без нуля", "773456789"], ["Число", "7,707083893E+09"]]
    location = await _queue(client, me, _csv(rows), "valid_rows", "orgs.csv")
    job = await wait_for_import(client, me, location)
    assert job["state"] == "succeeded", job
    english = await import_report(client, me, location)
    russian = await import_report(client, ru, location)

    def problems(lines: list[dict[str, Any]]) -> list[tuple[int, str, str, str]]:
        return [
            (line["row"], *(e[k] for k in ("field", "kind", "message")))
            for line in lines
            for e in line["errors"]
        ]

    assert [p[:3] for p in problems(russian)] == [p[:3] for p in problems(english)]
    messages = {row: message for row, _, _, message in problems(russian)}
    assert messages[2].startswith("В ИНН 9 цифр: Excel потерял ведущий ноль?")
    assert "Excel превратил ячейку в число" in messages[3]
    assert problems(english)[0][3].startswith("INN has 9 digits: a leading zero lost by Excel?")
    download = await client.get(f"{location}/report.xlsx", headers=ru)
    assert download.status_code == 200, download.text
    sheet = load_workbook(io.BytesIO(download.content), read_only=True).worksheets[0]
    reasons = [row[-1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert reasons[0] == f"inn: {messages[2]}"

    broken = "Наименование\r\nАльфа\r\n".encode() + b"\xff\r\n"
    failed = await wait_for_import(
        client, me, await _queue(client, me, broken, "dry_run", "bad.csv")
    )
    assert failed["state"] == "failed"
    in_russian = await client.get(f"/v1/organizations/imports/{failed['id']}", headers=ru)
    problem = in_russian.json()["problem"]
    assert problem["type"].endswith("unreadable-file")
    assert problem["detail"].startswith("Файл не прочитан: строка 3 не в кодировке UTF-8")


async def _old_job(
    conn: asyncpg.Connection, north: str, principal: dict[str, Any], days: int, lines: int
) -> uuid.UUID:
    """A job that finished ``days`` ago, with ``lines`` report lines and a part of its file."""
    job_id = uuid.uuid4()
    await conn.execute(
        "INSERT INTO import_jobs (id, state, mode, filename, directions, overrides, principal,"
        " created_by, file_bytes, created_at, finished_at) VALUES ($1, 'succeeded',"
        " 'valid_rows', 'old.csv', $2, '{}', $3, $4, 3, now() - make_interval(days => $5 + 1),"
        " now() - make_interval(days => $5))",
        job_id,
        [north],
        json.dumps(principal),
        principal["subject"],
        days,
    )
    await conn.execute(
        "INSERT INTO import_job_lines (job_id, rank, row, line)"
        " SELECT $1, 1, n, '{}' FROM generate_series(2, $2 + 1) AS n",
        job_id,
        lines,
    )
    await conn.execute(
        "INSERT INTO import_job_files (job_id, part, data) VALUES ($1, 0, 'abc')", job_id
    )
    return job_id


async def test_jobs_finished_more_than_the_kept_days_ago_are_removed(
    client: httpx.AsyncClient, issuer: TokenIssuer, infra: Infrastructure
) -> None:
    """Removed with their report lines (many: several transactions) and stored file, audited;
    a recent job stays; a job another process is removing (its row locked) is skipped, not
    waited for, and removed once free."""
    north = fresh_direction()
    me = sales(issuer, north, subject=f"user-{north}")
    principal = {"subject": f"user-{north}", "roles": ["sales"], "directions": [north]}
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    holder = await asyncpg.connect(infra.test_database_url("directory"))
    try:
        locked = await _old_job(conn, north, principal, 40, 10)
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM import_jobs WHERE id = $1 FOR UPDATE", locked)
        old = await _old_job(conn, north, principal, 31, 230)  # five transactions of 50 lines
        recent = await _old_job(conn, north, principal, 29, 5)
        assert (await client.get(f"/v1/organizations/imports/{old}", headers=me)).status_code == 200

        async def gone(job_id: uuid.UUID) -> None:
            """Until the job is no more (a 404), 60 s at most."""
            for _ in range(300):
                answer = await client.get(f"/v1/organizations/imports/{job_id}", headers=me)
                if answer.status_code == 404:
                    return
                await asyncio.sleep(0.2)
            raise AssertionError(f"job {job_id} was not removed")

        await gone(old)
        assert (
            await client.get(f"/v1/organizations/imports/{locked}", headers=me)
        ).status_code == 200
        await transaction.rollback()
        await gone(locked)
        for job_id in (old, locked):
            for table in ("import_job_lines", "import_job_files"):
                left = await conn.fetchval(
                    f"SELECT count(*) FROM {table} WHERE job_id = $1", job_id
                )
                assert left == 0, (table, job_id)
            audit = await conn.fetchrow(
                "SELECT action, actor_subject, changes FROM audit_log"
                " WHERE entity_kind = 'import_job' AND entity_id = $1",
                job_id,
            )
            assert audit is not None
            assert (audit["action"], audit["actor_subject"]) == ("removed", "directory")
            assert json.loads(audit["changes"])["filename"] == "old.csv"
        kept = await client.get(f"/v1/organizations/imports/{recent}", headers=me)
        assert kept.status_code == 200
        assert (
            await conn.fetchval("SELECT count(*) FROM import_job_lines WHERE job_id = $1", recent)
            == 5
        )
    finally:
        await holder.close()
        await conn.close()


async def test_a_lease_renewal_tells_a_job_its_child_finished_from_one_taken_over(
    directory: ServiceProcess, infra: Infrastructure
) -> None:
    """The heartbeat stops the child for a cancel or a job another process took over, but
    lets a child that finished its job exit by itself (no "taken over" then)."""
    job_id, owner = uuid.uuid4(), f"process-{uuid.uuid4()}"
    engine = create_async_engine(async_url(infra.test_database_url("directory")))
    sessions = async_sessionmaker(engine)
    try:
        async with sessions() as session, session.begin():
            await queries.insert_job(
                session,
                {
                    "id": job_id,
                    "state": "running",
                    "mode": "valid_rows",
                    "filename": "o.csv",
                    "directions": ["north"],
                    "overrides": {},
                    "principal": {"subject": "someone"},
                    "created_by": "someone",
                    "file_bytes": 0,
                    "owner": owner,
                },
            )

        async def renew() -> str:
            async with sessions() as session, session.begin():
                return await queries.renew(session, job_id, owner, 5)

        assert await renew() == "kept"
        async with sessions() as session, session.begin():
            await queries.set_job(session, job_id, None, cancel_requested=True)
        assert await renew() == "cancel"
        async with sessions() as session, session.begin():
            await queries.set_job(session, job_id, None, owner="another-process")
        assert await renew() == "lost"
        async with sessions() as session, session.begin():
            await queries.finish_job(session, job_id, None, state="succeeded")
        assert await renew() == "ended"
    finally:
        await engine.dispose()
