"""The interactions service (issue 4): the client summary with 10,000 interactions on one
client, and the throughput of the logging endpoint.

The service runs as a process (`clientele serve interactions`) on the bench's own database,
with its consumers off (the client cards, people and interactions are seeded straight into its
read models and tables, so it reads no shared topic).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import tempfile
import time
import uuid
from typing import Any

import asyncpg
import httpx

from bench.figures.http import serve_bare_app
from bench.figures.services import issuer, service_database, start_service
from bench.processes import Proc
from bench.registry import Context, Metric, Target, figure
from bench.stats import percentile

DIRECTION = "bench"
EMPLOYEE = uuid.UUID("00000000-0000-4000-8000-0000000be4c4")


async def seeded(ctx: Context) -> tuple[str, uuid.UUID, int]:
    """The database with one client of `interactions` interactions (done, and 1% planned) and
    `people` people working there; made once per bench. (url, client id, interactions)."""
    count, people = int(ctx.params["interactions"]), int(ctx.params["people"])
    key = f"interactions:seeded:{count}"
    url = await service_database(ctx, "interactions")
    if key in ctx.shared:
        org, _ = ctx.shared[key]
        return url, org, count
    org = uuid.uuid4()
    now = dt.datetime.now(dt.UTC)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO client_cards (organization_id, legal_name, short_name, inn, status,"
            " directions, version) VALUES ($1, $2, $3, $4, 'client', $5, 1)",
            org,
            "ООО «Бенчмарк Индастриз»",
            "Бенчмарк",
            "7701234567",
            [DIRECTION],
        )
        person_ids = [uuid.uuid4() for _ in range(people)]
        await conn.copy_records_to_table(
            "persons",
            records=[
                (pid, f"Иванов{i}", "Пётр", [f"p{i}@bench.test"], [DIRECTION], 1)
                for i, pid in enumerate(person_ids)
            ],
            columns=["person_id", "last_name", "first_name", "emails", "directions", "version"],
        )
        await conn.copy_records_to_table(
            "employments",
            records=[(uuid.uuid4(), pid, org, "Менеджер по закупкам", 1) for pid in person_ids],
            columns=["employment_id", "person_id", "organization_id", "position", "version"],
        )
        kinds = ("call", "email", "meeting", "message")
        records = []
        for seq in range(count):
            planned = seq % 100 == 0
            records.append(
                (
                    uuid.uuid4(),
                    org,
                    kinds[seq % len(kinds)],
                    "out" if seq % 3 else "in",
                    "planned" if planned else "done",
                    None if planned else now - dt.timedelta(minutes=30 * seq + 1),
                    now + dt.timedelta(days=1, hours=seq) if planned else None,
                    600,
                    [person_ids[seq % people]] if people else [],
                    EMPLOYEE,
                    f"Обсуждение поставки #{seq}",
                    "Заметки к контакту. " * 10,
                    1,
                    "bench",
                    "bench",
                )
            )
        await conn.copy_records_to_table(
            "interactions",
            records=records,
            columns=[
                "id",
                "organization_id",
                "kind",
                "direction",
                "status",
                "occurred_at",
                "due_at",
                "duration_seconds",
                "person_ids",
                "responsible_employee_id",
                "subject",
                "notes",
                "version",
                "created_by",
                "updated_by",
            ],
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    ctx.shared[key] = (org, count)
    return url, org, count


async def start_interactions(ctx: Context, url: str, *, consumers: bool = False) -> Proc:
    if "interactions:attachments" not in ctx.shared:
        holder = tempfile.TemporaryDirectory(prefix="clientele-bench-attachments-")
        ctx.cleanup.callback(holder.cleanup)
        ctx.shared["interactions:attachments"] = holder.name
    return await start_service(
        ctx,
        "interactions",
        url,
        RUN_CONSUMERS="true" if consumers else "false",
        ATTACHMENTS_DIR=ctx.shared["interactions:attachments"],
    )


def sales_headers(ctx: Context) -> dict[str, str]:
    token = issuer(ctx).mint(
        "bench-sales", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
    )
    return {"Authorization": f"Bearer {token}"}


async def timed_gets(
    client: httpx.AsyncClient, url: str, count: int, before: Any = None
) -> list[float]:
    """`count` sequential GETs; milliseconds each (`before()` is awaited, untimed, first)."""
    latencies = []
    for _ in range(count):
        if before is not None:
            await before()
        started = time.perf_counter()
        response = await client.get(url)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return latencies


@figure(
    "interactions-summary",
    "Interactions: client summary with 10,000 interactions",
    kind="figure",
    description=(
        "GET /v1/clients/{id}/summary (defaults: last 10, next 10) of one client with"
        " `interactions` interactions (1% planned) and `people` people, seeded in bulk into the"
        " service's tables, as a sales user of the client's direction; `requests` sequential"
        " requests from one keep-alive client after `warmup` untimed ones. Warm: the body"
        " comes from Redis (X-Cache: hit; the card, generation and overdue count are still"
        " read live). Cold: before each request the client's summary generation is bumped in"
        " PostgreSQL, exactly what an event the summary shows does, so every request misses"
        " and rebuilds. `bare_*`: the bench's bare FastAPI app (as `http-bare`, GET /ping)"
        " measured the same way in the same run; `http-bare`'s own latencies are at 32"
        " concurrent clients and so are not comparable with these sequential ones."
    ),
    metrics=[
        Metric(
            "warm_p95_ms",
            "warm (cached) p95",
            "ms",
            target=Target("<", 30),
            baseline="interactions-summary.bare_p95_ms",
            higher_is_better=False,
        ),
        Metric(
            "cold_p95_ms",
            "cold (invalidated) p95",
            "ms",
            target=Target("<", 30),
            baseline="interactions-summary.bare_p95_ms",
            higher_is_better=False,
        ),
        Metric("warm_p50_ms", "warm p50", "ms", higher_is_better=False),
        Metric("cold_p50_ms", "cold p50", "ms", higher_is_better=False),
        Metric(
            "bare_p95_ms", "bare FastAPI GET /ping p95, same client", "ms", higher_is_better=False
        ),
    ],
    params={"interactions": 10_000, "people": 20, "requests": 400, "warmup": 30},
    quick_params={"requests": 200},
    timeout=240,
)
async def interactions_summary(ctx: Context) -> dict[str, float]:
    count, warmup = int(ctx.params["requests"]), int(ctx.params["warmup"])
    people = int(ctx.params["people"])
    url, org, _ = await seeded(ctx)
    service = await start_interactions(ctx, url)
    bare = await serve_bare_app(ctx)
    conn = await asyncpg.connect(url)

    async def invalidate() -> None:
        await conn.execute(
            "INSERT INTO summary_generations (organization_id, generation) VALUES ($1, 1)"
            " ON CONFLICT (organization_id) DO UPDATE"
            " SET generation = summary_generations.generation + 1",
            org,
        )

    summary = f"{service.url}/v1/clients/{org}/summary"
    try:
        async with httpx.AsyncClient(headers=sales_headers(ctx), timeout=30) as client:
            first = await client.get(summary)
            first.raise_for_status()
            shown = first.json()
            if len(shown["last_interactions"]) != 10 or len(shown["people"]) != people:
                ctx.notes.append("the summary does not show the seeded interactions and people")
            await timed_gets(client, summary, warmup)
            hit = await client.get(summary)
            if hit.headers.get("x-cache") != "hit":
                ctx.notes.append(f"warm request answered X-Cache: {hit.headers.get('x-cache')}")
            warm = await timed_gets(client, summary, count)
            await timed_gets(client, summary, warmup // 3, invalidate)
            cold = await timed_gets(client, summary, count, invalidate)
        async with httpx.AsyncClient(timeout=30) as client:
            await timed_gets(client, f"{bare.url}/ping", warmup)
            plain = await timed_gets(client, f"{bare.url}/ping", count)
    finally:
        await conn.close()
    return {
        "warm_p95_ms": percentile(warm, 95),
        "cold_p95_ms": percentile(cold, 95),
        "warm_p50_ms": percentile(warm, 50),
        "cold_p50_ms": percentile(cold, 50),
        "bare_p95_ms": percentile(plain, 95),
    }


@figure(
    "interactions-log",
    "Interactions: logging an interaction",
    kind="figure",
    description=(
        "POST /v1/interactions (a done call with subject, notes, duration and one person) by"
        " `concurrency` workers sending back to back, each with its own httpx AsyncClient (one"
        " keep-alive connection) and its own client organization, as a sales user, for"
        " `seconds` s after a `warmup_s` s warm-up; each request writes the interaction, its"
        " audit row, the summary generation bump and its event in one transaction (the relay"
        " publishes the events meanwhile). Baseline: `http-bare`'s GET /ping at 32 clients."
    ),
    metrics=[
        Metric("req_per_s", "interactions logged", "req/s", baseline="http-bare.req_per_s"),
        Metric("p50_ms", "p50 latency", "ms", higher_is_better=False),
        Metric("p99_ms", "p99 latency", "ms", higher_is_better=False),
    ],
    params={
        "interactions": 10_000,
        "people": 20,
        "concurrency": 16,
        "seconds": 5.0,
        "warmup_s": 1.0,
    },
    quick_params={"seconds": 3.0, "warmup_s": 0.5},
    timeout=180,
)
async def interactions_log(ctx: Context) -> dict[str, float]:
    concurrency = int(ctx.params["concurrency"])
    seconds, warmup = float(ctx.params["seconds"]), float(ctx.params["warmup_s"])
    url, _, _ = await seeded(ctx)
    orgs = [uuid.uuid4() for _ in range(concurrency)]
    participant = uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.executemany(
            "INSERT INTO client_cards (organization_id, legal_name, status, directions, version)"
            " VALUES ($1, $2, 'client', $3, 1)",
            [(org, f"ООО «Клиент {i}»", [DIRECTION]) for i, org in enumerate(orgs)],
        )
        await conn.execute(  # a participant the caller may see (references are checked)
            "INSERT INTO persons (person_id, last_name, directions, version)"
            " VALUES ($1, $2, $3, 1)",
            participant,
            "Иванов",
            [DIRECTION],
        )
    finally:
        await conn.close()
    service = await start_interactions(ctx, url)
    headers = sales_headers(ctx)
    loop = asyncio.get_running_loop()
    measuring = loop.time() + warmup
    stop = measuring + seconds
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient, org: uuid.UUID) -> None:
        while (sent := loop.time()) < stop:
            response = await client.post(
                f"{service.url}/v1/interactions",
                json={
                    "organization_id": str(org),
                    "kind": "call",
                    "direction": "out",
                    "duration_seconds": 300,
                    "person_ids": [str(participant)],
                    "responsible_employee_id": str(EMPLOYEE),
                    "subject": "Уточнение условий поставки",
                    "notes": "Клиент просит скидку на объём. " * 5,
                },
            )
            if response.status_code != 201:
                raise RuntimeError(f"POST answered {response.status_code}: {response.text}")
            if sent >= measuring:
                latencies.append((loop.time() - sent) * 1000)

    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(headers=headers, timeout=30))
            for _ in range(concurrency)
        ]
        await asyncio.gather(*(worker(c, org) for c, org in zip(clients, orgs, strict=True)))
        ended = loop.time()
    return {
        "req_per_s": len(latencies) / (ended - measuring),
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
    }
