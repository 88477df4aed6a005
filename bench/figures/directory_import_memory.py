"""The directory's memory around a large rejected import (issue 17, ADRs 58 and 62): what the
service process holds idle, at its peak, and after the job, and what the job's own processes
took.

A fresh `clientele serve directory` process (relay and consumers off) over a kept base of
10,000 organizations is given a small file (about 25 rows) first, then the same large .xlsx
twice, each as an all-or-nothing import that is rejected (the file's in-file duplicates are bad
rows: nothing is written). The resident set (VmRSS) of the service process alone is read from
/proc: idle before the first import, 10 s after the small one (what any first import loads),
at its peak (VmHWM), and 10 s after each large job ended. Since ADR 62 a job's rows run in a
child process that ends with the job (its reader is the child's child): the largest peak
(VmHWM) of one of those processes, polled every 0.2 s while a large job runs, is reported
apart. The allocator variants ADR 58 compared (`MALLOC_ARENA_MAX=2`,
`PYTHONMALLOC=malloc`) changed nothing and are no longer measured.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from pathlib import Path
from typing import Any

import httpx
from openpyxl import Workbook

from bench.figures.directory import seeded_base
from bench.figures.directory_import import (
    DIRECTION,
    FINISHED,
    HEADER,
    dataset,
    write_workbook,
)
from bench.figures.services import issuer, start_service
from bench.registry import Context, Metric, figure

VARIANTS: dict[str, dict[str, str]] = {"default": {}}
"""The settings compared (the metrics keep the variant's name)."""
SETTLE_SECONDS = 10.0


def _kb(pid: int, key: str) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith(key + ":"))
    return int(line.split()[1])


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _peaks(pid: int, seen: dict[int, int]) -> None:
    """The VmHWM (kB) of each descendant of ``pid`` now alive, kept in ``seen`` by pid."""
    for child in _descendants(pid):
        try:
            seen[child] = max(seen.get(child, 0), _kb(child, "VmHWM"))
        except (OSError, StopIteration):
            continue  # ended meanwhile


async def _rejected(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    content: bytes,
    pid: int,
    seen: dict[int, int],
) -> None:
    queued = await client.post(
        "/v1/organizations/import",
        files={"file": ("organizations.xlsx", content, "application/octet-stream")},
        data={"mode": "all_or_nothing"},
        headers=headers,
    )
    if queued.status_code != 202:
        raise RuntimeError(f"answered {queued.status_code}: {queued.text[:500]}")
    while True:
        job = (await client.get(queued.headers["Location"], headers=headers)).json()
        if job["state"] in FINISHED:
            break
        _peaks(pid, seen)
        await asyncio.sleep(0.2)
    if job["state"] != "rejected":
        raise RuntimeError(f"the import ended {job['state']}: {str(job)[:500]}")


async def _variant(
    ctx: Context, url: str, small: bytes, content: bytes, env: dict[str, str]
) -> list[float]:
    """(idle, after the small job, peak, after the first large job, after the second, the
    job processes' peak) in MB."""
    service = await start_service(
        ctx, "directory", url, RUN_CONSUMERS="false", RUN_RELAY="false", **env
    )
    pid = service.process.pid
    token = issuer(ctx).mint("bench-importer", roles=["sales"], directions=[DIRECTION])
    headers = {"Authorization": f"Bearer {token}"}
    try:
        async with httpx.AsyncClient(base_url=service.url, timeout=120) as client:
            await asyncio.sleep(SETTLE_SECONDS)
            idle = _kb(pid, "VmRSS")
            await _rejected(client, headers, small, pid, {})
            await asyncio.sleep(SETTLE_SECONDS)
            warm = _kb(pid, "VmRSS")
            after = []
            children: dict[int, int] = {}
            for _ in range(2):
                await _rejected(client, headers, content, pid, children)
                await asyncio.sleep(SETTLE_SECONDS)
                after.append(_kb(pid, "VmRSS"))
            peak = _kb(pid, "VmHWM")
    finally:
        await service.stop()
    jobs = max(children.values(), default=0)
    return [kb / 1024 for kb in (idle, warm, peak, *after, jobs)]


def _small_rejected() -> bytes:
    """50 rows whose last repeats the first (an in-file duplicate: the import is rejected)."""
    rows = [row for row in dataset(50, 1_000).file_rows() if row[2]]
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    for row in [HEADER, *rows, rows[0]]:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _metrics() -> list[Metric]:
    metrics = []
    for name in VARIANTS:
        metrics += [
            Metric(f"{name}_idle_mb", f"{name}: idle before", "MB", higher_is_better=False),
            Metric(
                f"{name}_warm_mb", f"{name}: after a 25-row import", "MB", higher_is_better=False
            ),
            Metric(f"{name}_peak_mb", f"{name}: peak", "MB", higher_is_better=False),
            Metric(f"{name}_after_mb", f"{name}: 10 s after the job", "MB", higher_is_better=False),
            Metric(
                f"{name}_kept_mb",
                f"{name}: kept after the large job (after - after the small one)",
                "MB",
                higher_is_better=False,
            ),
            Metric(
                f"{name}_after2_mb", f"{name}: after a second job", "MB", higher_is_better=False
            ),
            Metric(
                f"{name}_job_process_peak_mb",
                f"{name}: the largest peak of a job's process (child or reader)",
                "MB",
                higher_is_better=False,
            ),
        ]
    return metrics


@figure(
    "directory-import-memory",
    "Directory: memory kept after a large rejected import",
    kind="figure",
    description=(
        "A fresh directory process over a base of 10,000 organizations;"
        " an .xlsx of `rows` organizations (with in-file duplicates) imported all-or-nothing"
        " and rejected, twice. VmRSS of the service process alone (not its readers): idle"
        " before, 10 s after a 25-row import (what a first import loads), its peak (VmHWM),"
        " 10 s after each large job; `kept` is after the first large job minus after the"
        " small one; the largest peak (VmHWM) of a job's own process (child or reader, ADR 62)."
    ),
    metrics=_metrics(),
    params={"rows": 20_000},
    quick_params={"rows": 5_000},
    timeout=1800,
)
async def directory_import_memory(ctx: Context) -> dict[str, float]:
    rows = int(ctx.params["rows"])
    holder = tempfile.TemporaryDirectory(prefix="clientele-bench-import-memory-")
    ctx.cleanup.callback(holder.cleanup)
    workbook = Path(holder.name) / "organizations.xlsx"
    await asyncio.to_thread(write_workbook, dataset(rows, 1_000), workbook)
    content = workbook.read_bytes()
    small = await asyncio.to_thread(_small_rejected)
    url = (await seeded_base(ctx, 10_000, 0)).url
    result: dict[str, Any] = {}
    for name, env in VARIANTS.items():
        idle, warm, peak, after, after2, jobs = await _variant(ctx, url, small, content, env)
        result |= {
            f"{name}_idle_mb": idle,
            f"{name}_warm_mb": warm,
            f"{name}_peak_mb": peak,
            f"{name}_after_mb": after,
            f"{name}_kept_mb": after - warm,
            f"{name}_after2_mb": after2,
            f"{name}_job_process_peak_mb": jobs,
        }
    return result
