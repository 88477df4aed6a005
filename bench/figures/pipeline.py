"""The pipeline service (issue 12): the kanban board over 100,000 open deals.

The service runs as a process (`clientele serve pipeline`) on the bench's own database with its
consumers off: the pipeline, the read models and the deals are seeded straight into its tables.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from bench.figures.interactions import timed_gets
from bench.figures.services import issuer, service_database, start_service
from bench.registry import Context, Metric, Target, figure
from bench.stats import percentile

DIRECTION = "bench"
STAGES = ("Новая", "Квалификация", "Предложение", "Переговоры", "Счёт", "Выиграна")


async def seeded(ctx: Context) -> tuple[str, uuid.UUID, uuid.UUID]:
    """The database with one pipeline of `deals` open deals over five open stages, 5,000
    clients and 50 employees; made once per bench. (url, pipeline id, an employee id)."""
    deals = int(ctx.params["deals"])
    key = f"pipeline:seeded:{deals}"
    url = await service_database(ctx, "pipeline")
    if key in ctx.shared:
        pipeline, employee = ctx.shared[key]
        return url, pipeline, employee
    pipeline = uuid.uuid4()
    stage_ids = [uuid.uuid4() for _ in STAGES]
    employees = [uuid.uuid4() for _ in range(50)]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO pipelines (id, name, directions, version, created_by, updated_by)"
            " VALUES ($1, 'Продажи', $2, 1, 'bench', 'bench')",
            pipeline,
            [DIRECTION, "other"],
        )
        await conn.executemany(
            "INSERT INTO stages (id, pipeline_id, position, name, kind, probability)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (sid, pipeline, n, name, "won" if n == len(STAGES) - 1 else "open", n * 20)
                for n, (sid, name) in enumerate(zip(stage_ids, STAGES, strict=True))
            ],
        )
        await conn.executemany(
            "INSERT INTO employees (employee_id, name, email, directions, version)"
            " VALUES ($1, $2, $3, $4, 1)",
            [
                (e, f"Продавец {n}", f"s{n}@bench.test", [DIRECTION])
                for n, e in enumerate(employees)
            ],
        )
        await conn.execute(
            "INSERT INTO organizations (organization_id, legal_name, directions, version)"
            " SELECT gen_random_uuid(), 'ООО «Клиент ' || i || '»', $1, 1"
            " FROM generate_series(1, 5000) i",
            [DIRECTION],
        )
        await conn.execute(
            """
            WITH orgs AS (SELECT array_agg(organization_id) AS ids FROM organizations)
            INSERT INTO deals (id, pipeline_id, stage_id, status, organization_id, title, amount,
                currency, directions, tags, responsible_employee_id, expected_close_date,
                version, created_by, updated_by, created_at)
            SELECT gen_random_uuid(), $1, ($2::uuid[])[1 + i % 5], 'open', orgs.ids[1 + i % 5000],
                'Сделка №' || i, (i % 1000) * 100 + 0.5,
                CASE WHEN i % 10 = 0 THEN 'USD' ELSE 'RUB' END,
                CASE WHEN i % 2 = 0 THEN ARRAY['bench'] ELSE ARRAY['bench', 'other'] END,
                ARRAY['t' || (i % 20)], ($3::uuid[])[1 + i % 50], date '2027-01-01' + i % 365,
                1, 'bench', 'bench', now() - make_interval(secs => i)
            FROM generate_series(1, $4::int) i, orgs
            """,
            pipeline,
            stage_ids,
            employees,
            deals,
        )
        await conn.execute("VACUUM ANALYZE deals")
        await conn.execute("VACUUM ANALYZE organizations")
    finally:
        await conn.close()
    ctx.shared[key] = (pipeline, employees[0])
    return url, pipeline, employees[0]


@figure(
    "pipeline-board",
    "Pipeline: the kanban board over 100,000 open deals",
    kind="figure",
    description=(
        "GET /v1/pipelines/{id}/board (20 deals per column, counts and sums per stage and"
        " currency over every visible deal) of one pipeline with `deals` open deals in five"
        " open stages, seeded in bulk, as a sales user of the deals' direction; `requests`"
        " sequential requests from one keep-alive client after `warmup` untimed ones, without"
        " a filter, with a responsible employee (1 in 50 deals), and with a text (a client's"
        " name fragment or the title, ILIKE over the trigram indexes). A column's next page by"
        " its cursor is timed too."
    ),
    metrics=[
        Metric(
            "all_p95_ms", "whole board p95", "ms", target=Target("<", 50), higher_is_better=False
        ),
        Metric("all_p50_ms", "whole board p50", "ms", higher_is_better=False),
        Metric("responsible_p95_ms", "one responsible p95", "ms", higher_is_better=False),
        Metric("text_p95_ms", "text filter p95", "ms", higher_is_better=False),
        Metric("page_p95_ms", "a column's next page p95", "ms", higher_is_better=False),
    ],
    params={"deals": 100_000, "requests": 200, "warmup": 20},
    quick_params={"requests": 60},
    timeout=600,
)
async def pipeline_board(ctx: Context) -> dict[str, float]:
    count, warmup = int(ctx.params["requests"]), int(ctx.params["warmup"])
    url, pipeline, employee = await seeded(ctx)
    service = await start_service(ctx, "pipeline", url, RUN_CONSUMERS="false")
    token = issuer(ctx).mint(
        "bench-sales", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
    )
    board = f"{service.url}/v1/pipelines/{pipeline}/board"
    results: dict[str, Any] = {}
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        first = (await client.get(board)).raise_for_status().json()
        shown = sum(column["count"] for column in first["columns"])
        if shown != int(ctx.params["deals"]):
            ctx.notes.append(f"the board counts {shown} deals")
        column = first["columns"][0]
        page = f"{board}?stage_id={column['stage']['id']}&cursor={column['next_cursor']}"
        for name, target in [
            ("all", board),
            ("responsible", f"{board}?responsible_employee_id={employee}"),
            ("text", f"{board}?q=Клиент 42»"),
            ("page", page),
        ]:
            await timed_gets(client, target, warmup)
            results[name] = await timed_gets(client, target, count)
    return {
        "all_p95_ms": percentile(results["all"], 95),
        "all_p50_ms": percentile(results["all"], 50),
        "responsible_p95_ms": percentile(results["responsible"], 95),
        "text_p95_ms": percentile(results["text"], 95),
        "page_p95_ms": percentile(results["page"], 95),
    }


async def _clients_and_stages(
    url: str, pipeline: uuid.UUID
) -> tuple[list[uuid.UUID], list[uuid.UUID]]:
    conn = await asyncpg.connect(url)
    try:
        clients = [
            r[0] for r in await conn.fetch("SELECT organization_id FROM organizations LIMIT 500")
        ]
        stages = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM stages WHERE pipeline_id = $1 ORDER BY position", pipeline
            )
        ]
    finally:
        await conn.close()
    return clients, stages


@figure(
    "pipeline-deals",
    "Pipeline: deal creation and stage moves over HTTP",
    kind="figure",
    description=(
        "`concurrency` clients (one keep-alive connection each) POST /v1/deals back to back for"
        " `seconds` s after `warmup_s` s (each a deal with an amount, two tags, a responsible"
        " employee and product lines, checked against the read models; one transaction with"
        " its stage history row, audit entry, board totals and outbox event), then move the"
        " deals they created to the next stage (POST /v1/deals/{id}/move with If-Match) for the"
        " same time, on the pipeline of `pipeline-board` (100,000 open deals). The relay runs;"
        " consumers are off. Ratio: to `http-bare` in the same bench run."
    ),
    metrics=[
        Metric(
            "create_per_s",
            "deals created",
            "req/s",
            baseline="http-bare.req_per_s",
        ),
        Metric("create_p99_ms", "create p99", "ms", higher_is_better=False),
        Metric("move_per_s", "stage moves", "req/s", baseline="http-bare.req_per_s"),
        Metric("move_p99_ms", "move p99", "ms", higher_is_better=False),
    ],
    params={"deals": 100_000, "concurrency": 32, "seconds": 10.0, "warmup_s": 2.0},
    quick_params={"seconds": 4.0, "warmup_s": 1.0},
    timeout=600,
)
async def pipeline_deals(ctx: Context) -> dict[str, float]:
    import asyncio
    import contextlib

    url, pipeline, employee = await seeded(ctx)
    clients, stages = await _clients_and_stages(url, pipeline)
    service = await start_service(ctx, "pipeline", url, RUN_CONSUMERS="false")
    token = issuer(ctx).mint(
        "bench-sales", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
    )
    headers = {"Authorization": f"Bearer {token}"}
    workers, seconds = int(ctx.params["concurrency"]), float(ctx.params["seconds"])
    warmup = float(ctx.params["warmup_s"])
    loop = asyncio.get_running_loop()
    created: list[list[str]] = [[] for _ in range(workers)]
    latencies: dict[str, list[float]] = {"create": [], "move": []}
    counts = {"create": 0, "move": 0}
    elapsed = {"create": seconds, "move": seconds}

    async def phase(name: str, work: Any) -> None:
        start = loop.time() + warmup
        stop = start + seconds
        async with contextlib.AsyncExitStack() as stack:
            pool = [
                await stack.enter_async_context(httpx.AsyncClient(headers=headers, timeout=60))
                for _ in range(workers)
            ]

            async def run(n: int, client: httpx.AsyncClient) -> None:
                turn = 0
                while loop.time() < stop:
                    began = loop.time()
                    if not await work(n, client, turn):
                        return
                    turn += 1
                    if began >= start:
                        latencies[name].append((loop.time() - began) * 1000)
                        counts[name] += 1

            await asyncio.gather(*(run(n, c) for n, c in enumerate(pool)))
        elapsed[name] = max(min(loop.time(), stop) - start, 1e-9)

    async def create(n: int, client: httpx.AsyncClient, turn: int) -> bool:
        body = {
            "pipeline_id": str(pipeline),
            "organization_id": str(clients[(n * 7919 + turn) % len(clients)]),
            "title": f"Бенч {n}-{turn}",
            "currency": "RUB",
            "responsible_employee_id": str(employee),
            "tags": ["bench", f"w{n}"],
            "products": [{"name": "Станок", "quantity": "2", "price": "1500.00", "discount": "5"}],
            "amount_from_products": True,
        }
        response = await client.post(f"{service.url}/v1/deals", json=body)
        response.raise_for_status()
        created[n].append(response.json()["id"])
        return True

    async def move(n: int, client: httpx.AsyncClient, turn: int) -> bool:
        if turn >= len(created[n]):
            return False
        response = await client.post(
            f"{service.url}/v1/deals/{created[n][turn]}/move",
            json={"stage_id": str(stages[1]), "reason": "bench"},
            headers={"If-Match": 'W/"1"'},
        )
        response.raise_for_status()
        return True

    await phase("create", create)
    await phase("move", move)
    if elapsed["move"] < seconds:
        ctx.notes.append(f"the moves ran out of deals after {elapsed['move']:.1f} s")
    return {
        "create_per_s": counts["create"] / elapsed["create"],
        "create_p99_ms": percentile(latencies["create"], 99),
        "move_per_s": counts["move"] / elapsed["move"],
        "move_p99_ms": percentile(latencies["move"], 99),
    }
