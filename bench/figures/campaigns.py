"""The campaigns service (issue 14): a 100,000-member list added to an event's stage, a bulk
status update of 10,000 participants, the effectiveness report over 1,000 events.

The service runs as a process (`clientele serve campaigns`) on the bench's own database with
its consumers off (the relay runs: the events it stages are published as in production); the
directory's read models, a static list and the events are seeded straight into its tables.
"""

from __future__ import annotations

import time
import uuid

import asyncpg
import httpx

from bench.figures.interactions import timed_gets
from bench.figures.services import issuer, service_database, start_service
from bench.registry import Context, Metric, Target, figure
from bench.stats import percentile

DIRECTION = "bench"


async def _event(conn: asyncpg.Connection, title: str, start_days: int = 0) -> uuid.UUID:
    """A marketing event of the bench's direction with four stages, planned `start_days` days
    into 2030."""
    event = uuid.uuid4()
    await conn.execute(
        "INSERT INTO marketing_events (id, kind, title, status, planned_start, planned_end,"
        " directions, version, created_by, updated_by)"
        " VALUES ($1, 'seminar', $2, 'planned', timestamptz '2030-01-01 10:00+00' + $3 * interval"
        " '1 day', timestamptz '2030-01-01 18:00+00' + $3 * interval '1 day', $4, 1, 'bench',"
        " 'bench')",
        event,
        title,
        start_days,
        [DIRECTION],
    )
    await conn.execute(
        "INSERT INTO campaign_stages (id, campaign_id, position, name)"
        " SELECT gen_random_uuid(), $1, n, (ARRAY['Подготовка', 'Приглашения', 'Мероприятие',"
        " 'Постобработка'])[n + 1] FROM generate_series(0, 3) n",
        event,
    )
    return event


async def seeded_list(ctx: Context) -> tuple[str, uuid.UUID]:
    """The database with `members` live organizations of the bench's direction (1 in 100
    blocked) in the read model, all of them members of one static list; made once per bench.
    (url, list id)."""
    members = int(ctx.params["members"])
    key = f"campaigns:list:{members}"
    url = await service_database(ctx, "campaigns")
    if key in ctx.shared:
        list_id: uuid.UUID = ctx.shared[key]
        return url, list_id
    list_id = uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO organizations (organization_id, legal_name, directions, blocked,"
            " version) SELECT gen_random_uuid(), 'ООО «Участник ' || i || '»', $1, i % 100 = 0, 1"
            " FROM generate_series(1, $2::int) i",
            [DIRECTION],
            members,
        )
        await conn.execute(
            "INSERT INTO directory_lists (list_id, name) VALUES ($1, 'Дилеры')", list_id
        )
        await conn.execute(
            "INSERT INTO directory_list_members (list_id, organization_id)"
            " SELECT $1, organization_id FROM organizations",
            list_id,
        )
        for table in ("organizations", "directory_list_members"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    ctx.shared[key] = list_id
    return url, list_id


def _token(ctx: Context) -> str:
    return issuer(ctx).mint("bench-marketer", roles=["sales"], directions=[DIRECTION])


@figure(
    "campaigns-list",
    "Campaigns: a 100,000-member list added to an event's stage",
    kind="figure",
    description=(
        "POST /v1/campaigns/{id}/list-resolutions of a static list of `members` organizations"
        " (1 in 100 blocked: refused and recorded) into a new event's first stage, over HTTP"
        " as a sales user of the direction: each member checked against the read model, the"
        " participants, their stage history, audit entries, refusals, the resolution with"
        " every member's outcome and the `participants.added` events (1,000 a batch) written"
        " in one transaction. One addition per run, each into a new event."
    ),
    metrics=[
        Metric("seconds", "list added", "s", target=Target("<", 10), higher_is_better=False),
        Metric("members_per_s", "members resolved", "members/s"),
    ],
    params={"members": 100_000},
    quick_params={},
    timeout=600,
)
async def campaigns_list(ctx: Context) -> dict[str, float]:
    members = int(ctx.params["members"])
    url, list_id = await seeded_list(ctx)
    conn = await asyncpg.connect(url)
    try:
        event = await _event(conn, "Список")
    finally:
        await conn.close()
    service = await start_service(ctx, "campaigns", url, RUN_CONSUMERS="false")
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {_token(ctx)}"}, timeout=300
    ) as client:
        started = time.perf_counter()
        response = await client.post(
            f"{service.url}/v1/campaigns/{event}/list-resolutions", json={"list_id": str(list_id)}
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    resolution = response.json()["resolution"]
    if resolution["members"] != members or resolution["added"] != members - members // 100:
        ctx.notes.append(f"resolved {resolution}")
    return {"seconds": seconds, "members_per_s": members / seconds}


async def _participants(conn: asyncpg.Connection, event: uuid.UUID, count: int) -> None:
    """`count` participants of the event at its first stage, with their stage history."""
    stage = await conn.fetchval(
        "SELECT id FROM campaign_stages WHERE campaign_id = $1 AND position = 0", event
    )
    await conn.execute(
        "WITH added AS (INSERT INTO participants (id, campaign_id, stage_id, organization_id,"
        " status, version, created_by, updated_by) SELECT gen_random_uuid(), $1, $2,"
        " organization_id, 'invited', 1, 'bench', 'bench' FROM organizations WHERE NOT blocked"
        " LIMIT $3 RETURNING id, stage_id) INSERT INTO participant_stage_history (participant_id,"
        " campaign_id, to_stage_id, status, actor_subject) SELECT id, $1, stage_id, 'invited',"
        " 'bench' FROM added",
        event,
        stage,
        count,
    )


@figure(
    "campaigns-bulk-status",
    "Campaigns: bulk status update of 10,000 participants",
    kind="figure",
    description=(
        "POST /v1/campaigns/{id}/participants/bulk-update setting `confirmed` on `participants`"
        " participants of a new event (seeded), all or none: each locked, a new version, an"
        " audit entry and a `participant.status_changed` event each, over HTTP as a sales user"
        " of the direction. One update per run."
    ),
    metrics=[
        Metric("seconds", "bulk update", "s", higher_is_better=False),
        Metric("participants_per_s", "participants updated", "participants/s"),
    ],
    params={"participants": 10_000, "members": 100_000},
    quick_params={},
    timeout=600,
)
async def campaigns_bulk_status(ctx: Context) -> dict[str, float]:
    count = int(ctx.params["participants"])
    url, _ = await seeded_list(ctx)
    conn = await asyncpg.connect(url)
    try:
        event = await _event(conn, "Массовое обновление")
        await _participants(conn, event, count)
        ids = [
            str(r[0])
            for r in await conn.fetch("SELECT id FROM participants WHERE campaign_id = $1", event)
        ]
    finally:
        await conn.close()
    service = await start_service(ctx, "campaigns", url, RUN_CONSUMERS="false")
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {_token(ctx)}"}, timeout=300
    ) as client:
        started = time.perf_counter()
        response = await client.post(
            f"{service.url}/v1/campaigns/{event}/participants/bulk-update",
            json={"participant_ids": ids, "status": "confirmed"},
        )
        seconds = time.perf_counter() - started
    response.raise_for_status()
    return {"seconds": seconds, "participants_per_s": count / seconds}


async def seeded_events(ctx: Context) -> str:
    """`events` events over the year 2031, each with `per_event` participants (a quarter
    attended), four budget lines in two currencies, and deals of its participants in the
    deals read model (one in ten participants opened one within 30 days); made once."""
    events, per_event = int(ctx.params["events"]), int(ctx.params["per_event"])
    key = f"campaigns:events:{events}:{per_event}"
    url, _ = await seeded_list(ctx)
    if key in ctx.shared:
        return url
    conn = await asyncpg.connect(url)
    try:
        for n in range(events):
            event = await _event(conn, f"Семинар {n}", 365 + n % 365)
            await _participants(conn, event, per_event)
        await conn.execute(
            "UPDATE participants p SET status = 'attended' FROM marketing_events e"
            " WHERE e.id = p.campaign_id AND e.planned_start >= '2031-01-01'"
            " AND get_byte(uuid_send(p.id), 0) < 64"
        )
        await conn.execute(
            "INSERT INTO budget_lines (id, campaign_id, position, category, currency, planned,"
            " actual, quantity, unit) SELECT gen_random_uuid(), e.id, n, (ARRAY['venue',"
            " 'catering', 'consumables', 'advertising'])[n + 1], CASE WHEN n = 3 THEN 'EUR' ELSE"
            " 'RUB' END, 1000 * (n + 1), 1100 * (n + 1), CASE WHEN n = 2 THEN 5 END, CASE WHEN"
            " n = 2 THEN 'пачка' END FROM marketing_events e, generate_series(0, 3) n"
            " WHERE e.planned_start >= '2031-01-01'"
        )
        await conn.execute(
            "INSERT INTO deals (deal_id, version, organization_id, status, amount, currency,"
            " directions, opened_at) SELECT gen_random_uuid(), 1, p.organization_id,"
            " CASE WHEN get_byte(uuid_send(p.id), 1) < 128 THEN 'won' ELSE 'open' END,"
            " 100000, 'RUB', $1, e.planned_end + interval '10 days' FROM participants p"
            " JOIN marketing_events e ON e.id = p.campaign_id"
            " WHERE e.planned_start >= '2031-01-01' AND get_byte(uuid_send(p.id), 2) < 26",
            [DIRECTION],
        )
        for table in ("marketing_events", "participants", "budget_lines", "deals"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    ctx.shared[key] = url
    return url


@figure(
    "campaigns-report",
    "Campaigns: the effectiveness report over 1,000 events",
    kind="figure",
    description=(
        "GET /v1/effectiveness over a year holding `events` events of the caller's direction"
        " (`per_event` participants each, budget lines in two currencies, deals attributed by"
        " the 90-day window), JSON and .xlsx: counts by status and stage, costs per participant"
        " and attendee, consumables, attributed deals and conversion, per event and in total."
        " `requests` sequential requests of each after one untimed one."
    ),
    metrics=[
        Metric("json_p50_ms", "JSON p50", "ms", target=Target("<", 2000), higher_is_better=False),
        Metric("json_p95_ms", "JSON p95", "ms", higher_is_better=False),
        Metric("xlsx_p50_ms", ".xlsx p50", "ms", higher_is_better=False),
    ],
    params={"events": 1000, "per_event": 100, "requests": 10, "members": 100_000},
    quick_params={"requests": 4},
    timeout=900,
)
async def campaigns_report(ctx: Context) -> dict[str, float]:
    count = int(ctx.params["requests"])
    url = await seeded_events(ctx)
    service = await start_service(ctx, "campaigns", url, RUN_CONSUMERS="false")
    period = "from=2031-01-01T00:00:00Z&to=2032-01-01T00:00:00Z"
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {_token(ctx)}"}, timeout=300
    ) as client:
        first = (await client.get(f"{service.url}/v1/effectiveness?{period}")).raise_for_status()
        shown = len(first.json()["events"])
        if shown != int(ctx.params["events"]):
            ctx.notes.append(f"the report covers {shown} events")
        json = await timed_gets(client, f"{service.url}/v1/effectiveness?{period}", count)
        await timed_gets(client, f"{service.url}/v1/effectiveness.xlsx?{period}", 1)
        xlsx = await timed_gets(client, f"{service.url}/v1/effectiveness.xlsx?{period}", count)
    return {
        "json_p50_ms": percentile(json, 50),
        "json_p95_ms": percentile(json, 95),
        "xlsx_p50_ms": percentile(xlsx, 50),
    }
