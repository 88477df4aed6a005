"""An import job's work runs in a child process that ends with the job (ADR 62): the child is
another process than the service's, a child killed mid-job leaves the job to the sweep with
nothing of its run written, and a service that stops stops its jobs' children and gives their
jobs back; after a rolled-back import of enough rows the child vacuums the tables it inserted
into (ADR 73). (A cancel stopping the child: test_directory_import_jobs_api.)"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for
from directory_testkit import fresh_direction, fresh_inn, sales, wait_for_import
from openpyxl import Workbook

pytestmark = pytest.mark.integration
ENV = {
    "IMPORT_CHUNK_ROWS": "50",
    "IMPORT_JOB_LEASE_SECONDS": "2",
    "IMPORT_JOB_SWEEP_SECONDS": "0.5",
}
VENV_BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def directory_env() -> dict[str, str]:
    return ENV


def _xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def _queue(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    mode: str,
    what: str = "organizations",
) -> str:
    queued = await client.post(
        f"/v1/{what}/import",
        files={"file": ("o.xlsx", content, "application/octet-stream")},
        data={"mode": mode},
        headers=headers,
    )
    assert queued.status_code == 202, queued.text
    location: str = queued.headers["Location"]
    return location


async def _job_row(conn: asyncpg.Connection, location: str) -> asyncpg.Record:
    job_id = uuid.UUID(location.rsplit("/", 1)[1])
    row = await conn.fetchrow(
        "SELECT state, owner, worker_pid, rows_read, total_rows, counts FROM import_jobs"
        " WHERE id = $1",
        job_id,
    )
    assert row is not None
    return row


async def _until(conn: asyncpg.Connection, location: str, ready: Any) -> asyncpg.Record:
    """The job's row once ``ready(row)`` holds (polled; 120 s at most)."""
    for _ in range(1200):
        row = await _job_row(conn, location)
        if ready(row):
            return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"the job never got there: {dict(row)}")


async def _waiting_for_a_lock(conn: asyncpg.Connection) -> None:
    """Until a session of this database waits for a row lock (120 s at most)."""
    for _ in range(1200):
        if await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("no session waits for a lock")


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("PPid:")).split()[1])


@pytest.fixture
def own_service(
    infra: Infrastructure, service_env: dict[str, str], migrated: None, tmp_path: Path
) -> Iterator[Callable[..., ServiceProcess]]:
    """Starts a directory service of the test's own, with ENV and the given settings, stopped
    after the test. Its tests come first in the module: no other directory process runs yet to
    take their jobs."""
    started: list[ServiceProcess] = []

    def start(**settings: str) -> ServiceProcess:
        env = {**service_env, "DATABASE_URL": infra.test_database_url("directory"), **ENV}
        started.append(ServiceProcess("directory", {**env, **settings}, tmp_path, VENV_BIN))
        return started[-1]

    yield start
    for service in started:
        service.stop()


async def test_a_stopping_service_stops_its_jobs_children_and_gives_the_jobs_back(
    own_service: Callable[..., ServiceProcess], infra: Infrastructure, issuer: TokenIssuer
) -> None:
    service = own_service()
    me = sales(issuer, fresh_direction())
    rows = [["Наименование", "ИНН"], *[[f"Остановка {n}", fresh_inn()] for n in range(20)]]
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    try:  # writing imports wait for this lock: the job is caught running
        await conn.execute("SELECT pg_advisory_lock(hashtext('clientele-directory-import'))")
        wait_for(service.ready, 60, "directory to be ready")
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            location = await _queue(client, me, _xlsx(rows), "valid_rows")
            job = await _until(conn, location, lambda r: r["total_rows"] is not None)
        child = job["worker_pid"]
        assert child != service.process.pid
        assert _parent_of(child) == service.process.pid
        await asyncio.to_thread(service.stop)
        assert service.process.returncode in (0, -signal.SIGTERM)  # not killed: it stopped
        assert not _exists(child)  # stopped before the service exited
        given_back = await _job_row(conn, location)
        assert (given_back["state"], given_back["owner"]) == ("running", None)
    finally:
        service.stop()
        await conn.close()


VACUUMED = ("organizations", "directory_search_words", "persons", "employments")


async def _vacuums(conn: asyncpg.Connection) -> dict[str, tuple[int, int]]:
    """Per table of VACUUMED: its manual VACUUMs, and those plus autovacuum's."""
    rows = await conn.fetch(
        "SELECT relname, vacuum_count, vacuum_count + autovacuum_count AS every"
        " FROM pg_stat_user_tables WHERE relname = ANY($1::text[])",
        list(VACUUMED),
    )
    return {row["relname"]: (row["vacuum_count"], row["every"]) for row in rows}


async def test_a_rolled_back_import_of_enough_rows_vacuums_the_tables_it_inserted_into(
    own_service: Callable[..., ServiceProcess], infra: Infrastructure, issuer: TokenIssuer
) -> None:
    # a lease of a minute gives the vacuum 15 s
    service = own_service(IMPORT_JOB_LEASE_SECONDS="60", IMPORT_VACUUM_ROWS="60")
    me = sales(issuer, fresh_direction())
    header = ["Наименование", "ИНН"]
    many = [[f"Пылесос {n}", fresh_inn()] for n in range(70)]
    bad = [*many[:35], ["Плохой ИНН", "123"], *many[35:]]
    few = [[f"Пылинка {n}", fresh_inn()] for n in range(30)]
    persons = [["Фамилия", "Имя", "Email"]]
    persons += [
        ["Пылев", f"Иван {n}", f"dust{n}.{uuid.uuid4().hex[:8]}@example.ru"] for n in range(70)
    ]
    conn = await asyncpg.connect(infra.test_database_url("directory"))

    async def vacuumed(
        client: httpx.AsyncClient,
        content: bytes,
        mode: str,
        what: str = "organizations",
        expect: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """The job's state and the tables VACUUMed from its start to its child's exit. A table
        autovacuum held is skipped, so its VACUUM counts too: waited for on the tables in
        ``expect``, up to 10 s."""
        before = await _vacuums(conn)
        location = await _queue(client, me, content, mode, what)
        job = await wait_for_import(client, me, location)
        child = (await _job_row(conn, location))["worker_pid"]
        await _until(conn, location, lambda _: not _exists(child))  # its vacuum ended too
        after = await _vacuums(conn)
        for _ in range(100):
            if all(after[t][1] > before[t][1] for t in expect):
                break
            await asyncio.sleep(0.1)
            after = await _vacuums(conn)
        return {
            "state": job["state"],
            "vacuumed": {t for t in VACUUMED if after[t][1] > before[t][1]},
            "by the import": {t for t in VACUUMED if after[t][0] > before[t][0]},
        }

    organizations = frozenset({"organizations", "directory_search_words"})
    contacts = frozenset({"persons", "directory_search_words"})
    try:
        wait_for(service.ready, 60, "directory to be ready")
        async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
            # 70 new organizations inserted, then rolled back: their tables vacuumed
            dry = await vacuumed(client, _xlsx([header, *many]), "dry_run", expect=organizations)
            assert (dry["state"], dry["vacuumed"] >= organizations) == ("succeeded", True), dry
            assert dry["by the import"] <= organizations, dry
            rejected = await vacuumed(
                client, _xlsx([header, *bad]), "all_or_nothing", expect=organizations
            )
            assert rejected["state"] == "rejected", rejected
            assert rejected["vacuumed"] >= organizations, rejected
            people = await vacuumed(client, _xlsx(persons), "dry_run", "persons", expect=contacts)
            assert (people["state"], people["vacuumed"] >= contacts) == ("succeeded", True), people
            assert "organizations" not in people["by the import"], people
            # fewer rows than IMPORT_VACUUM_ROWS are autovacuum's; committed rows are no dead ones
            small = await vacuumed(client, _xlsx([header, *few]), "dry_run")
            assert (small["state"], small["by the import"]) == ("succeeded", set()), small
            kept = await vacuumed(client, _xlsx([header, *many]), "valid_rows")
            assert (kept["state"], kept["by the import"]) == ("succeeded", set()), kept
    finally:
        service.stop()
        await conn.close()


@pytest.fixture
async def client(directory: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=directory.url, timeout=60) as http:
        yield http


async def test_a_job_runs_in_a_child_and_a_child_killed_mid_job_is_resumed_by_the_sweep(
    client: httpx.AsyncClient,
    issuer: TokenIssuer,
    infra: Infrastructure,
    directory: ServiceProcess,
) -> None:
    north = fresh_direction()
    me = sales(issuer, north)
    locked_inn = fresh_inn()
    made = await client.post(
        "/v1/organizations",
        json={"legal_name": "Запертая", "inn": locked_inn, "directions": [north]},
        headers=me,
    )
    assert made.status_code == 201, made.text
    rows: list[list[Any]] = [["Наименование", "ИНН"]]
    rows += [[f"Убитый {n}", fresh_inn()] for n in range(120)]
    rows += [["Запертая", locked_inn]]  # in the third chunk: it waits for the row lock below
    rows += [[f"Убитый {n}", fresh_inn()] for n in range(120, 149)]
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    locker = await asyncpg.connect(infra.test_database_url("directory"))
    try:
        holding = locker.transaction()
        await holding.start()
        await locker.execute("SELECT 1 FROM organizations WHERE inn = $1 FOR UPDATE", locked_inn)
        location = await _queue(client, me, _xlsx(rows), "all_or_nothing")
        # two chunks written inside the import's transaction, the third waiting for the lock;
        # a chunk's progress is written while the next one is decided (ADR 72): the first's
        first = await _until(conn, location, lambda r: r["rows_read"] >= 50)
        await _waiting_for_a_lock(conn)
        waiting = await _job_row(conn, location)
        # the progress of the first chunk: its rows counted, none of the second's
        assert waiting["rows_read"] == 50
        assert json.loads(waiting["counts"])["rows"] == 50
        child = first["worker_pid"]
        assert child is not None
        assert child != directory.process.pid
        assert _parent_of(child) == directory.process.pid
        os.kill(child, signal.SIGKILL)
        await _until(conn, location, lambda r: r["worker_pid"] != child)
        await holding.rollback()
        job = await wait_for_import(client, me, location)
        resumed = await _job_row(conn, location)
    finally:
        await locker.close()
        await conn.close()
    assert (job["state"], job["attempts"]) == ("succeeded", 2), job
    # the killed run's 100 organizations were never committed: the second run created them
    assert (job["counts"]["rows"], job["counts"]["created"], job["counts"]["skipped"]) == (
        150,
        149,
        0,
    ), job
    assert resumed["worker_pid"] not in (child, directory.process.pid)
    listed = await client.get("/v1/organizations?limit=500", headers=me)
    assert listed.status_code == 200, listed.text
    assert len(listed.json()) == 150
