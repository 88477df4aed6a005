"""The pipeline service (issue 12): the kanban board over 100,000 open deals.

The service runs as a process (`clientele serve pipeline`) on the bench's own database with its
consumers off: the pipeline, the read models and the deals are seeded straight into its tables.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx

from bench.figures.http import cpu_seconds
from bench.figures.interactions import timed_gets
from bench.figures.services import issuer, service_database, start_service
from bench.registry import Context, Metric, Target, figure
from bench.stats import percentile

DIRECTION = "bench"
STAGES = ("Новая", "Квалификация", "Предложение", "Переговоры", "Счёт", "Выиграна")


STAGE_TOTALS_OFF = "ALTER TABLE deals DISABLE TRIGGER deals_stage_totals_insert_delete"
"""The board totals' row trigger would upsert the same few rows once per seeded deal in one
transaction (a version chain as long as the seed): off while seeding, the totals summed after."""
STAGE_TOTALS_ON = "ALTER TABLE deals ENABLE TRIGGER deals_stage_totals_insert_delete"
STAGE_TOTALS_OF_PIPELINE = (
    "INSERT INTO stage_totals (pipeline_id, stage_id, currency, directions, shard, deals, amount)"
    " SELECT pipeline_id, stage_id, coalesce(currency, ''), directions, 0, count(*),"
    " coalesce(sum(amount), 0) FROM deals WHERE pipeline_id = $1"
    " GROUP BY pipeline_id, stage_id, coalesce(currency, ''), directions"
)


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
        await conn.execute(STAGE_TOTALS_OFF)
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
        await conn.execute(STAGE_TOTALS_ON)
        await conn.execute(STAGE_TOTALS_OF_PIPELINE, pipeline)
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
        " consumers are off. Ratio: to `http-bare` in the same bench run. The service's CPU"
        " per request (user + system time of its process over the timed window, its relay"
        " included, divided by the requests answered) depends less on what else loads the"
        " machine than the rates do."
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
        Metric("create_cpu_ms", "service CPU per creation", "ms", higher_is_better=False),
        Metric("move_cpu_ms", "service CPU per move", "ms", higher_is_better=False),
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
    cpu = {"create": 0.0, "move": 0.0}

    async def service_cpu(name: str, start: float, stop: float) -> None:
        """The service process's CPU seconds over the timed window (its relay included)."""
        await asyncio.sleep(max(start - loop.time(), 0))
        began = cpu_seconds(service.process.pid)
        await asyncio.sleep(max(stop - loop.time(), 0))
        cpu[name] = cpu_seconds(service.process.pid) - began

    async def phase(name: str, work: Any) -> None:
        start = loop.time() + warmup
        stop = start + seconds
        metered = asyncio.create_task(service_cpu(name, start, stop))
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
        await metered

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
        "create_cpu_ms": 1000 * cpu["create"] / max(counts["create"], 1),
        "move_cpu_ms": 1000 * cpu["move"] / max(counts["move"], 1),
    }


ANALYTICS_PATHS = (
    # (stage positions entered in order, final status): 5 stage history rows per deal
    ((0, 1, 2, 3, 5), "won"),
    ((0, 1, 2, 3, 6), "lost"),
    ((0, 1, 0, 1, 2), "open"),
    ((0, 1, 2, 1, 4), "open"),
)
ANALYTICS_STAGES = (
    ("Новая", "open", 10),
    ("Квалификация", "open", 30),
    ("Предложение", "open", 50),
    ("Счёт", "open", 70),
    ("Наблюдение", "monitoring", 0),
    ("Выиграна", "won", 100),
    ("Проиграна", "lost", 0),
)


ANALYTICS_TOTALS_OFF = "ALTER TABLE deal_stage_history DISABLE TRIGGER deal_stage_history_totals"
"""The analytics' totals trigger (ADR 44) is off while the history is copied (one upsert per
row in one transaction); the seed's totals are then recomputed from the history at once."""
ANALYTICS_TOTALS_ON = "ALTER TABLE deal_stage_history ENABLE TRIGGER deal_stage_history_totals"


def _analytics_rows(
    pipeline: uuid.UUID,
    stage_ids: list[uuid.UUID],
    employees: list[uuid.UUID],
    clients: list[uuid.UUID],
    deals: int,
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Deals over the last year, each with five stage history rows, and contacts."""
    import random
    from datetime import UTC, date, datetime, timedelta
    from decimal import Decimal

    rng = random.Random(12)
    now = datetime.now(UTC)
    deal_rows: list[tuple[Any, ...]] = []
    history_rows: list[tuple[Any, ...]] = []
    contact_rows: list[tuple[Any, ...]] = []
    for i in range(deals):
        deal_id = uuid.uuid4()
        path, status = ANALYTICS_PATHS[i % len(ANALYTICS_PATHS)]
        moved = now - timedelta(days=360 * (i / deals) + 5, seconds=rng.randrange(86_400))
        created = moved
        previous: datetime | None = None
        for n, position in enumerate(path):
            history_rows.append(
                (
                    deal_id,
                    pipeline,
                    stage_ids[path[n - 1]] if n else None,
                    stage_ids[position],
                    moved,
                    "bench",
                    "user",
                    1 + n,
                    previous,
                )
            )
            previous = moved
            moved = moved + timedelta(hours=rng.randrange(1, 24 * 20))
        closed = previous if status != "open" else None
        deal_rows.append(
            (
                deal_id,
                pipeline,
                stage_ids[path[-1]],
                status,
                clients[i % len(clients)],
                f"Сделка {i}",
                Decimal(rng.randrange(1_000, 10_000_000)) / 100,
                "USD" if i % 10 == 0 else "RUB",
                ["bench"] if i % 2 == 0 else ["bench", "other"],
                employees[i % len(employees)],
                date.today() + timedelta(days=i % 365),
                5,
                "bench",
                "bench",
                created,
                created,
                previous,
                closed,
                "Дорого" if status == "lost" else None,
            )
        )
        if status == "won":
            contact_rows.extend(
                (uuid.uuid4(), deal_id, clients[i % len(clients)], created) for _ in range(i % 5)
            )
    return deal_rows, history_rows, contact_rows


async def analytics_seeded(ctx: Context) -> tuple[str, uuid.UUID]:
    """One pipeline of `deals` deals with 5 stage changes each, written by COPY; once per
    bench. (url, pipeline id)."""
    deals = int(ctx.params["deals"])
    key = f"pipeline:analytics:{deals}"
    url = await service_database(ctx, "pipeline")
    if key in ctx.shared:
        return url, ctx.shared[key]
    pipeline = uuid.uuid4()
    stage_ids = [uuid.uuid4() for _ in ANALYTICS_STAGES]
    employees = [uuid.uuid4() for _ in range(50)]
    clients = [uuid.uuid4() for _ in range(5000)]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO pipelines (id, name, directions, version, created_by, updated_by,"
            " lost_reasons) VALUES ($1, 'Аналитика', $2, 1, 'bench', 'bench', '{Дорого}')",
            pipeline,
            [DIRECTION, "other"],
        )
        await conn.executemany(
            "INSERT INTO stages (id, pipeline_id, position, name, kind, probability)"
            " VALUES ($1, $2, $3, $4, $5, $6)",
            [
                (sid, pipeline, n, name, kind, probability)
                for n, (sid, (name, kind, probability)) in enumerate(
                    zip(stage_ids, ANALYTICS_STAGES, strict=True)
                )
            ],
        )
        await conn.copy_records_to_table(
            "employees",
            records=[
                (e, f"Продавец {n}", f"a{n}@bench.test", [DIRECTION], 1)
                for n, e in enumerate(employees)
            ],
            columns=["employee_id", "name", "email", "directions", "version"],
        )
        await conn.copy_records_to_table(
            "organizations",
            records=[(c, f"ООО «Аналитика {n}»", [DIRECTION], 1) for n, c in enumerate(clients)],
            columns=["organization_id", "legal_name", "directions", "version"],
        )
        deal_rows, history_rows, contact_rows = _analytics_rows(
            pipeline, stage_ids, employees, clients, deals
        )
        await conn.execute(STAGE_TOTALS_OFF)
        await conn.copy_records_to_table(
            "deals",
            records=deal_rows,
            columns=[
                "id",
                "pipeline_id",
                "stage_id",
                "status",
                "organization_id",
                "title",
                "amount",
                "currency",
                "directions",
                "responsible_employee_id",
                "expected_close_date",
                "version",
                "created_by",
                "updated_by",
                "created_at",
                "updated_at",
                "stage_entered_at",
                "closed_at",
                "lost_reason",
            ],
        )
        await conn.execute(STAGE_TOTALS_ON)
        await conn.execute(STAGE_TOTALS_OF_PIPELINE, pipeline)
        await conn.execute(ANALYTICS_TOTALS_OFF)
        await conn.copy_records_to_table(
            "deal_stage_history",
            records=history_rows,
            columns=[
                "deal_id",
                "pipeline_id",
                "from_stage_id",
                "to_stage_id",
                "moved_at",
                "actor_subject",
                "actor_kind",
                "deal_version",
                "from_entered_at",
            ],
        )
        await conn.execute(ANALYTICS_TOTALS_ON)
        await conn.execute("SELECT analytics_totals_rebuild($1)", pipeline)
        await conn.copy_records_to_table(
            "deal_contacts",
            records=contact_rows,
            columns=["interaction_id", "deal_id", "organization_id", "occurred_at"],
        )
        for table in (
            "deals",
            "deal_stage_history",
            "deal_contacts",
            "employees",
            "funnel_totals",
            "stage_stay_totals",
        ):
            await conn.execute(f"VACUUM ANALYZE {table}")
        changes = await conn.fetchval(
            "SELECT count(*) FROM deal_stage_history WHERE pipeline_id = $1", pipeline
        )
        if changes != deals * 5:
            ctx.notes.append(f"seeded {changes} stage changes")
    finally:
        await conn.close()
    ctx.shared[key] = pipeline
    return url, pipeline


@figure(
    "pipeline-analytics",
    "Pipeline: sales analytics over 1,000,000 stage changes",
    kind="figure",
    description=(
        "GET /v1/analytics/sales (funnel and time in stage per stage, won deals per employee"
        " and month, cycle length, contacts per won deal, monitoring, forecast) of one pipeline"
        " of `deals` deals with five stage history rows each (1,000,000 stage changes over a"
        " year, seeded by COPY), for the whole year, as a sales user of the deals' direction;"
        " `requests` sequential requests after `warmup` untimed ones. The .xlsx of the same"
        " report is timed too. Then, in the bench process over one connection, the funnel and"
        " time in stage as the service computes them (per-day totals, ADR 44) against the same"
        " two aggregates recomputed from the stage history (the queries before the totals)."
    ),
    metrics=[
        Metric("json_p50_ms", "report p50", "ms", target=Target("<", 1000), higher_is_better=False),
        Metric("json_max_ms", "report slowest", "ms", higher_is_better=False),
        Metric("xlsx_p50_ms", ".xlsx p50", "ms", higher_is_better=False),
        Metric(
            "totals_p50_ms",
            "funnel + time in stage from the totals p50",
            "ms",
            baseline="pipeline-analytics.history_p50_ms",
            higher_is_better=False,
        ),
        Metric(
            "history_p50_ms",
            "the same from the stage history p50",
            "ms",
            higher_is_better=False,
        ),
    ],
    params={"deals": 200_000, "requests": 10, "warmup": 2},
    quick_params={"requests": 5},
    timeout=900,
)
async def pipeline_analytics(ctx: Context) -> dict[str, float]:
    count, warmup = int(ctx.params["requests"]), int(ctx.params["warmup"])
    url, pipeline = await analytics_seeded(ctx)
    service = await start_service(ctx, "pipeline", url, RUN_CONSUMERS="false")
    token = issuer(ctx).mint(
        "bench-sales", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
    )
    report = f"{service.url}/v1/analytics/sales?pipeline_id={pipeline}&period=month"
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as client:
        first = (await client.get(report)).raise_for_status().json()
        reached = first["pipelines"][0]["funnel"][0]["reached"]
        if reached < int(ctx.params["deals"]) * 0.9:
            ctx.notes.append(f"the funnel's first stage counts {reached} deals")
        await timed_gets(client, report, warmup)
        report_ms = await timed_gets(client, report, count)
        workbook = report.replace("/sales?", "/sales.xlsx?")
        xlsx_ms = await timed_gets(client, workbook, max(count // 2, 1))
    totals_ms, history_ms = await _funnel_and_stays(url, first["pipelines"][0], count)
    return {
        "json_p50_ms": percentile(report_ms, 50),
        "json_max_ms": max(report_ms),
        "xlsx_p50_ms": percentile(xlsx_ms, 50),
        "totals_p50_ms": percentile(totals_ms, 50),
        "history_p50_ms": percentile(history_ms, 50),
    }


async def _funnel_and_stays(
    url: str, shown: dict[str, Any], count: int
) -> tuple[list[float], list[float]]:
    """Milliseconds of the funnel and time in stage from the totals and from the history,
    interleaved; the history's answer is checked against the report's."""
    import time
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from clientele_pipeline.analytics import queries
    from clientele_pipeline.analytics.rules import window
    from clientele_shared.auth.principal import Principal
    from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

    principal = Principal(
        subject="bench-sales", roles=frozenset({"sales"}), directions=frozenset({DIRECTION})
    )
    ids = [uuid.UUID(shown["pipeline_id"])]
    year = window(None, None, ZoneInfo("UTC"), "month", datetime.now(UTC).date())
    spans = [(year.start, year.end)]
    engine = create_async_engine(url.replace("postgresql://", "postgresql+asyncpg://", 1))
    timings: dict[str, list[float]] = {"totals": [], "history": []}
    try:
        async with AsyncSession(engine) as session:
            for _ in range(count):
                for name in timings:
                    started = time.perf_counter()
                    if name == "totals":
                        reached = await queries.reached(session, principal, ids, year)
                        await queries.stays(session, principal, ids, year)
                    else:
                        reached = await queries.reached_in_history(session, principal, ids, spans)
                        await queries.stays_in_history(session, principal, ids, spans)
                    timings[name].append((time.perf_counter() - started) * 1000)
                    if sum(reached.get(ids[0], {}).values()) != shown["funnel"][0]["reached"]:
                        raise AssertionError(f"{name}: the funnel differs from the report's")
                await session.rollback()
    finally:
        await engine.dispose()
    return timings["totals"], timings["history"]


@figure(
    "pipeline-summary-latency",
    "Pipeline: a stage move to the client summary in interactions showing it",
    kind="figure",
    description=(
        "The pipeline (relay on) and interactions (consumers on) as processes on their own"
        " databases; `deals` deals created over HTTP on the pipeline of `pipeline-board` and"
        " waited for in interactions' summary read model (`client_deals`). Then each deal is"
        " moved to the next stage over HTTP (If-Match), one after the other, and the time"
        " from sending the move to the read model holding the new stage (polled every 5 ms"
        " in interactions' database) is taken: the outbox, the relay, Kafka, interactions'"
        " inbox and its commit. Ratio: to the move's own HTTP latency in the same run."
    ),
    metrics=[
        Metric(
            "summary_p50_ms",
            "move to summary p50",
            "ms",
            baseline="pipeline-summary-latency.move_p50_ms",
            higher_is_better=False,
        ),
        Metric("summary_p99_ms", "move to summary p99", "ms", higher_is_better=False),
        Metric("move_p50_ms", "the move's HTTP p50", "ms", higher_is_better=False),
    ],
    params={"deals": 100_000, "moves": 200},
    quick_params={"moves": 40},
    timeout=900,
)
async def pipeline_summary_latency(ctx: Context) -> dict[str, float]:
    import time

    from bench.figures.interactions import start_interactions

    url, pipeline, employee = await seeded(ctx)
    clients, stages = await _clients_and_stages(url, pipeline)
    interactions_url = await service_database(ctx, "interactions")
    await start_interactions(ctx, interactions_url, consumers=True)
    service = await start_service(ctx, "pipeline", url)
    token = issuer(ctx).mint(
        "bench-sales", roles=["sales"], directions=[DIRECTION], ttl_seconds=3600
    )
    moves = int(ctx.params["moves"])
    summary = await asyncpg.connect(interactions_url)
    target = STAGES[1]
    summary_ms: list[float] = []
    move_ms: list[float] = []
    try:
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            ids = []
            for n in range(moves):
                body = {
                    "pipeline_id": str(pipeline),
                    "organization_id": str(clients[n % len(clients)]),
                    "title": f"Сводка {n}",
                    "responsible_employee_id": str(employee),
                }
                created = await client.post(f"{service.url}/v1/deals", json=body)
                ids.append(uuid.UUID(created.raise_for_status().json()["id"]))
            await _until(
                lambda: summary.fetchval(
                    "SELECT count(*) FROM client_deals WHERE deal_id = ANY($1::uuid[])", ids
                ),
                len(ids),
                seconds=120,
                pause=0.1,
            )
            for deal_id in ids:
                began = time.perf_counter()
                response = await client.post(
                    f"{service.url}/v1/deals/{deal_id}/move",
                    json={"stage_id": str(stages[1]), "reason": "bench"},
                    headers={"If-Match": 'W/"1"'},
                )
                move_ms.append((time.perf_counter() - began) * 1000)
                response.raise_for_status()
                await _until(
                    lambda deal_id=deal_id: summary.fetchval(
                        "SELECT stage FROM client_deals WHERE deal_id = $1", deal_id
                    ),
                    target,
                    seconds=60,
                    pause=0.005,
                )
                summary_ms.append((time.perf_counter() - began) * 1000)
    finally:
        await summary.close()
    return {
        "summary_p50_ms": percentile(summary_ms, 50),
        "summary_p99_ms": percentile(summary_ms, 99),
        "move_p50_ms": percentile(move_ms, 50),
    }


async def _until(read: Any, wanted: Any, *, seconds: float, pause: float) -> None:
    """Poll ``read()`` every ``pause`` s until it gives ``wanted``; TimeoutError after
    ``seconds``."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (found := await read()) != wanted:
        if loop.time() > deadline:
            raise TimeoutError(f"still {found!r}, not {wanted!r}, after {seconds} s")
        await asyncio.sleep(pause)
