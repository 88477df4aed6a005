"""The directory service (issue 17, ADR 67): importing 20,000 contacts as amoCRM exports them,
end to end over HTTP, as a dry run and committed, into a base of organizations of other
directions; optionally against another tree's directory code in the same run (``before``: the
path of its ``services/directory/src``, e.g. main's, imported first by the service process), the
two alternated.

The file is the tests' seeded generator of amoCRM exports with its ground truth
(``clientele_testkit.import_generator``): most contacts work at one of the importer's
companies (linked by name), some at a company nobody has, some at none; broken birthdays and
e-mails, rows without a name, in-file duplicates. The base is the kept organizations-only
database of the directory figures; the importer's companies are created over the API once per
run, and his persons, their audit entries and events are deleted before every import.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from clientele_testkit.import_generator import generate_persons
from openpyxl import Workbook

from bench.figures.directory import seeded_base
from bench.figures.directory_import import _children_gone
from bench.figures.services import issuer, start_service
from bench.processes import Proc
from bench.registry import Context, Metric, Target, before_metrics, figure

DIRECTION = "bench-person-import"
"""The importer's only direction: none of the base's organizations is in it."""
COMPANIES = [f"ООО «Контрагент-{i}»" for i in range(40)]
MODES = ("dry_run", "valid_rows")
FINISHED = {"succeeded", "rejected", "failed", "cancelled"}


def _write(rows: int, path: Path) -> dict[str, int]:
    """The generator's file of ``rows`` contacts as .xlsx; the outcomes its truth expects."""
    generated = generate_persons(rows, COMPANIES)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Контакты")
    sheet.append(generated.header)
    for row in generated.rows:
        sheet.append(row)
    book.save(path)
    outcomes: dict[str, int] = {}
    for truth in generated.truth.values():
        outcomes[truth.outcome] = outcomes.get(truth.outcome, 0) + 1
    return outcomes


async def _clear(url: str) -> None:
    """The importer's persons, their employments, and every audit entry and event deleted."""
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DELETE FROM employments WHERE person_id IN"
            " (SELECT id FROM persons WHERE directions && $1::varchar[])",
            [DIRECTION],
        )
        await conn.execute("DELETE FROM persons WHERE directions && $1::varchar[]", [DIRECTION])
        await conn.execute("TRUNCATE audit_log, outbox")
        await conn.execute("VACUUM ANALYZE persons")
    finally:
        await conn.close()


async def _drop_companies(url: str) -> None:
    await _clear(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "DELETE FROM organizations WHERE directions && $1::varchar[]", [DIRECTION]
        )
    finally:
        await conn.close()


def _headers(ctx: Context) -> dict[str, str]:
    token = issuer(ctx).mint(
        "bench-person-importer", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
    )
    return {"Authorization": f"Bearer {token}"}


async def _import(
    ctx: Context, url: str, content: bytes, mode: str, src: str | None
) -> tuple[float, dict[str, Any]]:
    """One import job run by a fresh service process (of ``src``'s code when given): seconds
    from the upload to the job's end, and the job's counts."""
    env = {"RUN_CONSUMERS": "false", "RUN_RELAY": "false"}
    if src:
        env["PYTHONPATH"] = src
    service: Proc = await start_service(ctx, "directory", url, **env)
    headers = _headers(ctx)
    async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
        started = time.perf_counter()
        queued = await client.post(
            "/v1/persons/import",
            files={"file": ("contacts.xlsx", content, "application/octet-stream")},
            data={"mode": mode},
            headers=headers,
        )
        if queued.status_code != 202:
            raise RuntimeError(f"{mode} answered {queued.status_code}: {queued.text[:500]}")
        while True:
            job = (await client.get(queued.headers["Location"], headers=headers)).json()
            if job["state"] in FINISHED:
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
    if job["state"] != "succeeded":
        raise RuntimeError(f"{mode} ended {job['state']}: {json.dumps(job)[:500]}")
    await _children_gone(service, 120.0)  # a dry run's vacuum (ADR 73) is not cancelled
    await service.stop()
    return seconds, {k: job["counts"][k] for k in ("rows", "created", "updated", "skipped")}


async def _companies(ctx: Context, url: str) -> None:
    """The importer's companies, created over the API (as their names are keyed)."""
    service = await start_service(ctx, "directory", url, RUN_CONSUMERS="false", RUN_RELAY="false")
    async with httpx.AsyncClient(base_url=service.url, timeout=60) as client:
        for name in COMPANIES:
            made = await client.post(
                "/v1/organizations",
                json={"legal_name": name, "directions": [DIRECTION]},
                headers=_headers(ctx),
            )
            if made.status_code != 201:
                raise RuntimeError(f"a company answered {made.status_code}: {made.text[:300]}")
    await service.stop()


def _metrics() -> list[Metric]:
    labels = {"dry_run": "dry run", "valid_rows": "import (valid rows), committed"}
    metrics = []
    for mode in MODES:
        metrics += [
            Metric(
                f"{mode}_s",
                f"{labels[mode]}, end to end",
                "s",
                target=Target("<", 60),
                higher_is_better=False,
            ),
            *before_metrics(mode, labels[mode]),
        ]
    return metrics


@figure(
    "directory-person-import",
    "Directory: import of 20,000 amoCRM contacts, dry run and committed",
    kind="figure",
    description=(
        "POST /v1/persons/import of an .xlsx of `rows` contacts as amoCRM exports them (the"
        " tests' seeded generator with its ground truth: most linked by name to one of 40"
        " companies of the importer, errors and in-file duplicates among them) as a sales user"
        " of one direction, into the kept base of `base` organizations of other directions, by"
        " a fresh `clientele serve directory` process (relay and consumers off), as a dry run"
        " and committed (valid rows), each a job, from the first byte of the upload to the job's"
        " end (polled every 0.2 s); the importer's persons, the audit trail and the outbox are"
        " emptied before each. With `before` (BENCH_PARAMS=before=<path of another tree's"
        " services/directory/src>) each import is also run by that code, alternated with this"
        " tree's, and `*_ratio` is this tree's time over that one's."
    ),
    metrics=_metrics(),
    params={"rows": 20_000, "base": 100_000, "before": ""},
    quick_params={"rows": 2_000, "base": 100_000, "before": ""},
    timeout=7200,
)
async def directory_person_import(ctx: Context) -> dict[str, float]:
    rows, before = int(ctx.params["rows"]), str(ctx.params["before"] or "")
    seed = await seeded_base(ctx, int(ctx.params["base"]), 0)
    with tempfile.TemporaryDirectory(prefix="clientele-bench-persons-") as holder:
        workbook = Path(holder) / "contacts.xlsx"
        expected = await asyncio.to_thread(_write, rows, workbook)
        content = await asyncio.to_thread(workbook.read_bytes)
        await _drop_companies(seed.url)
        await _companies(ctx, seed.url)
        result: dict[str, float] = {}
        try:
            for mode in MODES:
                for tag, src in [("", None), *([("before_", before)] if before else [])]:
                    await _clear(seed.url)
                    seconds, counts = await _import(ctx, seed.url, content, mode, src)
                    result[f"{tag}{mode}_s"] = seconds
                    if counts["created"] != expected.get("ok", 0):
                        ctx.notes.append(
                            f"{tag}{mode}: created {counts['created']}, the truth says"
                            f" {expected.get('ok', 0)} ({counts})"
                        )
                if before:
                    result[f"{mode}_ratio"] = result[f"{mode}_s"] / result[f"before_{mode}_s"]
        finally:
            await _drop_companies(seed.url)
    return result
