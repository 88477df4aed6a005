"""The pipeline's automation engine (issue 13): how late delayed actions and watched triggers
fire when 10,000 fall due within a minute, and how long a triggering event takes to become a
rule's committed effect at a sustained rate with 200 and with 2,000 enabled rules.

The pipeline runs as processes (`clientele serve pipeline`) on the bench's pipeline database;
pipelines, deals, rules, their schedule and watches are seeded straight into its tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.topics import DEALS

from bench.figures.services import service_database, start_service
from bench.registry import Context, Metric, Target, figure
from bench.stats import percentile

DIRECTION = "bench-automation"
AUTHOR = {"subject": "bench", "roles": ["admin"], "directions": [DIRECTION]}


async def _pipeline(conn: asyncpg.Connection, deals: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A pipeline with one open stage and ``deals`` open deals of one client."""
    pipeline, stage, client = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    await conn.execute(
        "INSERT INTO pipelines (id, name, directions, version, created_by, updated_by)"
        " VALUES ($1, 'Автоматика', $2, 1, 'bench', 'bench')",
        pipeline,
        [DIRECTION],
    )
    await conn.execute(
        "INSERT INTO stages (id, pipeline_id, position, name, kind, probability)"
        " VALUES ($1, $2, 0, 'Новая', 'open', 10)",
        stage,
        pipeline,
    )
    await conn.execute(
        "INSERT INTO organizations (organization_id, legal_name, directions, version)"
        " VALUES ($1, 'ООО «Автоматика»', $2, 1) ON CONFLICT DO NOTHING",
        client,
        [DIRECTION],
    )
    ids = [uuid.uuid4() for _ in range(deals)]
    await conn.executemany(
        "INSERT INTO deals (id, pipeline_id, stage_id, status, organization_id, title,"
        " directions, tags, custom_fields, version, created_by, updated_by)"
        " VALUES ($1, $2, $3, 'open', $4, 'Сделка', $5, '{}', '{}', 1, 'bench', 'bench')",
        [(deal, pipeline, stage, client, [DIRECTION]) for deal in ids],
    )
    await conn.execute("ANALYZE deals")
    return pipeline, ids


async def _rule(
    conn: asyncpg.Connection, pipeline: uuid.UUID, definition: dict[str, Any]
) -> uuid.UUID:
    rule = uuid.uuid4()
    await conn.execute(
        "INSERT INTO automation_rules (id, pipeline_id, name, enabled, definition,"
        " author_subject, author, version, created_by, updated_by, created_at, updated_at)"
        " VALUES ($1, $2, $3, true, $4, 'bench', $5, 1, 'bench', 'bench',"
        " now() - interval '1 hour', now() - interval '1 hour')",
        rule,
        pipeline,
        definition["name"],
        json.dumps(definition),
        json.dumps(AUTHOR),
    )
    await conn.execute(
        "INSERT INTO automation_rule_versions (rule_id, version, definition, author)"
        " VALUES ($1, 1, $2, $3)",
        rule,
        json.dumps(definition),
        json.dumps(AUTHOR),
    )
    return rule


def _lateness(fired: str) -> list[Metric]:
    """How late scheduled work ran (target within a second) and how much ran per second."""
    return [
        Metric(
            "late_p50_ms", "lateness p50", "ms", target=Target("<", 1000), higher_is_better=False
        ),
        Metric(
            "late_p99_ms", "lateness p99", "ms", target=Target("<", 1000), higher_is_better=False
        ),
        Metric("late_max_ms", "lateness max", "ms", higher_is_better=False),
        Metric("fired_per_s", fired, "1/s"),
    ]


@figure(
    "automation-delays",
    "Automation: delayed actions firing, 10,000 due within a minute",
    kind="figure",
    description=(
        "`actions` delayed `add_tags` actions of one rule on as many deals, seeded as scheduled"
        " steps due evenly over `spread` seconds from 10 s after the pipeline `replicas` are"
        " ready; each replica's scheduler takes due actions (`FOR UPDATE SKIP LOCKED`) and runs"
        " them through the deals' service functions, up to 50 in one transaction, three"
        " transactions at once. Lateness: the"
        " time the action finished (recorded in its step) minus its due time, over every"
        " action; its commit follows within its batch."
    ),
    metrics=_lateness("actions run per second"),
    params={"actions": 10_000, "spread": 60.0, "replicas": 2},
    quick_params={"actions": 2_000, "spread": 20.0},
    timeout=900,
)
async def automation_delays(ctx: Context) -> dict[str, float]:
    count, spread = int(ctx.params["actions"]), float(ctx.params["spread"])
    url = await service_database(ctx, "pipeline")
    conn = await asyncpg.connect(url)
    try:
        pipeline, deals = await _pipeline(conn, count)
        definition = {
            "name": "Отложенное",
            "enabled": True,
            "trigger": {"kind": "manual"},
            "actions": [{"kind": "add_tags", "tags": ["later"], "delay_seconds": 60}],
        }
        rule = await _rule(conn, pipeline, definition)
        replicas = [
            await start_service(ctx, "pipeline", url, RUN_CONSUMERS="false")
            for _ in range(int(ctx.params["replicas"]))
        ]
        start = datetime.now(UTC) + timedelta(seconds=10)
        firings = [uuid.uuid4() for _ in deals]
        await conn.executemany(
            "INSERT INTO automation_firings (id, rule_id, rule_version, event_id, deal_id,"
            " trigger, status, duration_ms) VALUES ($1, $2, 1, $3, $4, '{}', 'fired', 0)",
            [(f, rule, uuid.uuid4(), d) for f, d in zip(firings, deals, strict=True)],
        )
        await conn.executemany(
            "INSERT INTO automation_steps (firing_id, position, kind, status, detail,"
            " duration_ms) VALUES ($1, 0, 'add_tags', 'scheduled', '{}', 0)",
            [(f,) for f in firings],
        )
        await conn.executemany(
            "INSERT INTO automation_schedule (firing_id, position, due_at) VALUES ($1, 0, $2)",
            [(f, start + timedelta(seconds=spread * n / count)) for n, f in enumerate(firings)],
        )
        deadline = time.monotonic() + spread + 600
        left = count
        while time.monotonic() < deadline:
            left = await conn.fetchval(
                "SELECT count(*) FROM automation_schedule s JOIN automation_firings f"
                " ON f.id = s.firing_id WHERE f.rule_id = $1 AND NOT s.done",
                rule,
            )
            if left == 0:
                break
            await asyncio.sleep(1.0)
        for replica in replicas:
            replica.check()
        if left:
            ctx.notes.append(f"{left} of {count} actions had not run at the deadline")
        rows = await conn.fetch(
            "SELECT extract(epoch FROM (st.detail->>'ran_at')::timestamptz - s.due_at) * 1000"
            " AS late_ms, (st.detail->>'ran_at')::timestamptz AS ran_at"
            " FROM automation_schedule s JOIN automation_firings f ON f.id = s.firing_id"
            " JOIN automation_steps st ON st.firing_id = s.firing_id AND st.position = 0"
            " WHERE f.rule_id = $1 AND s.done AND st.status = 'done'",
            rule,
        )
    finally:
        await conn.close()
    late = [float(row["late_ms"]) for row in rows]
    finished = max(row["ran_at"] for row in rows)
    return {
        "late_p50_ms": percentile(late, 50),
        "late_p99_ms": percentile(late, 99),
        "late_max_ms": max(late),
        "fired_per_s": len(rows) / max((finished - start).total_seconds(), spread),
    }


@figure(
    "automation-watches",
    "Automation: watched triggers firing, 10,000 due within a minute",
    kind="figure",
    description=(
        "`watches` `no_activity` watches of one rule (tag the deal) on as many deals, seeded"
        " due evenly over `spread` seconds from 10 s after the pipeline `replicas` are ready"
        " (consumers off: nothing re-times them); each replica's scheduler takes due watches"
        " with their deals (`FOR UPDATE SKIP LOCKED`), up to 50 in one transaction, three"
        " transactions at once (the delayed actions' batch runner), and fires each in a"
        " savepoint. Lateness: the firing's end (its start, clock time, plus its duration)"
        " minus the watch's due time, over every firing; its commit follows within its batch."
    ),
    metrics=_lateness("watches fired per second"),
    params={"watches": 10_000, "spread": 60.0, "replicas": 2},
    quick_params={"watches": 2_000, "spread": 20.0},
    timeout=900,
)
async def automation_watches(ctx: Context) -> dict[str, float]:
    count, spread = int(ctx.params["watches"]), float(ctx.params["spread"])
    url = await service_database(ctx, "pipeline")
    conn = await asyncpg.connect(url)
    try:
        pipeline, deals = await _pipeline(conn, count)
        definition = {
            "name": "Тишина",
            "enabled": True,
            "trigger": {"kind": "no_activity", "days": 1},
            "actions": [{"kind": "add_tags", "tags": ["quiet"]}],
        }
        rule = await _rule(conn, pipeline, definition)
        replicas = [
            await start_service(ctx, "pipeline", url, RUN_CONSUMERS="false")
            for _ in range(int(ctx.params["replicas"]))
        ]
        start = datetime.now(UTC) + timedelta(seconds=10)
        due = [start + timedelta(seconds=spread * n / count) for n in range(count)]
        await conn.executemany(  # the last activity a day before each due time
            "INSERT INTO automation_watches (rule_id, deal_id, due_at, basis)"
            " VALUES ($1, $2, $3, $4)",
            [
                (rule, deal, at, (at - timedelta(days=1)).isoformat())
                for deal, at in zip(deals, due, strict=True)
            ],
        )
        deadline = time.monotonic() + spread + 600
        fired = 0
        while time.monotonic() < deadline:
            fired = await conn.fetchval(
                "SELECT count(*) FROM automation_firings WHERE rule_id = $1", rule
            )
            if fired >= count:
                break
            await asyncio.sleep(1.0)
        for replica in replicas:
            replica.check()
        if fired < count:
            ctx.notes.append(f"{count - fired} of {count} watches had not fired at the deadline")
        rows = await conn.fetch(
            "SELECT extract(epoch FROM f.started_at + make_interval(secs => f.duration_ms"
            " / 1000.0) - ((f.trigger->>'since')::timestamptz + interval '1 day')) * 1000"
            " AS late_ms, f.started_at + make_interval(secs => f.duration_ms / 1000.0)"
            " AS ended_at FROM automation_firings f WHERE f.rule_id = $1 AND f.status = 'fired'",
            rule,
        )
    finally:
        await conn.close()
    late = [float(row["late_ms"]) for row in rows]
    finished = max(row["ended_at"] for row in rows)
    return {
        "late_p50_ms": percentile(late, 50),
        "late_p99_ms": percentile(late, 99),
        "late_max_ms": max(late),
        "fired_per_s": len(rows) / max((finished - start).total_seconds(), spread),
    }


@figure(
    "automation-latency",
    "Automation: triggering event to the rule's committed effect at 500 events/s",
    kind="figure",
    description=(
        "`rules` enabled `field_changed` rules on one pipeline (each on its own value of a"
        " custom field; exactly one matches each event and sets a tag); `pipeline.deal.changed`"
        " events published to Kafka at `rate` per second for `seconds` over 2,000 deals, as the"
        " pipeline's relay would after the change committed (the relay's own hop, measured by"
        " `backbone-latency`, is not included). Latency: the firing's start (clock time) plus its"
        " duration, i.e. the end of its actions, minus the event's time, for every firing; the"
        " inbox batch's commit follows after the batch's remaining events (not included)."
        " Effect committed: the arrival of the firing's own `deal.changed` (published by the"
        " relay only after the inbox batch committed, so this includes the relay's hop)"
        " minus the event's time; only a firing that changed the deal publishes one (a deal's"
        " second event adds the tag it has already), so it covers each deal's first event."
        " Events fired per second: the firings over the time from the first event to the last"
        " firing's end (the rate the engine keeps up with; below `rate` when it falls behind);"
        " latency growth: the p50 of the last quarter of the events (by their time) minus the"
        " first quarter's (about 0 when the engine keeps up). `rules`: the rule counts run."
    ),
    metrics=[
        Metric("p50_ms_200", "p50, 200 rules", "ms", higher_is_better=False),
        Metric("p99_ms_200", "p99, 200 rules", "ms", higher_is_better=False),
        Metric("p50_ms_2000", "p50, 2,000 rules", "ms", higher_is_better=False),
        Metric("p99_ms_2000", "p99, 2,000 rules", "ms", higher_is_better=False),
        Metric("fired_share_2000", "share of events fired, 2,000 rules", "%"),
        Metric(
            "p50_published_ms_200", "effect committed, p50, 200 rules", "ms", higher_is_better=False
        ),
        Metric(
            "p99_published_ms_200", "effect committed, p99, 200 rules", "ms", higher_is_better=False
        ),
        Metric(
            "p50_published_ms_2000",
            "effect committed, p50, 2,000 rules",
            "ms",
            higher_is_better=False,
        ),
        Metric(
            "p99_published_ms_2000",
            "effect committed, p99, 2,000 rules",
            "ms",
            higher_is_better=False,
        ),
        Metric("published_share_200", "share of firings seen committed, 200 rules", "%"),
        Metric("published_share_2000", "share of firings seen committed, 2,000 rules", "%"),
        Metric("kept_per_s_200", "events fired per second, 200 rules", "1/s"),
        Metric("kept_per_s_2000", "events fired per second, 2,000 rules", "1/s"),
        Metric(
            "growth_ms_200",
            "latency growth (p50 of the last quarter minus the first's), 200 rules",
            "ms",
            higher_is_better=False,
        ),
        Metric(
            "growth_ms_2000",
            "latency growth (p50 of the last quarter minus the first's), 2,000 rules",
            "ms",
            higher_is_better=False,
        ),
    ],
    params={"rate": 500, "seconds": 20.0, "deals": 2_000, "rules": "200 2000"},
    quick_params={"seconds": 8.0},
    timeout=1200,
)
async def automation_latency(ctx: Context) -> dict[str, float]:
    url = await service_database(ctx, "pipeline")
    results: dict[str, float] = {}
    for rules in map(int, str(ctx.params["rules"]).split()):
        conn = await asyncpg.connect(url)
        try:
            pipeline, deals = await _pipeline(conn, int(ctx.params["deals"]))
            ids = [
                await _rule(
                    conn,
                    pipeline,
                    {
                        "name": f"Правило {n}",
                        "enabled": True,
                        "trigger": {
                            "kind": "field_changed",
                            "field": "custom_fields.grade",
                            "match": "to",
                            "to": f"v{n}",
                        },
                        "actions": [{"kind": "add_tags", "tags": [f"r{n % 50}"]}],
                    },
                )
                for n in range(rules)
            ]
            service = await start_service(ctx, "pipeline", url)
            async with _Effects(ctx) as effects:
                sent = await _publish(ctx, pipeline, deals, rules)
                await _drain(conn, ids, sent, float(ctx.params["seconds"]) + 120)
                await effects.wait(sent, 30.0)
            service.check()
            rows = await conn.fetch(
                "SELECT f.id, extract(epoch FROM e.occurred_at) AS occurred,"
                " extract(epoch FROM f.started_at + make_interval(secs =>"
                " f.duration_ms / 1000.0) - e.occurred_at) * 1000 AS ms"
                " FROM automation_firings f JOIN automation_recent_events e"
                " ON e.event_id = f.event_id WHERE f.rule_id = ANY($1::uuid[])",
                ids,
            )
        finally:
            await conn.close()
        timed = sorted(
            (float(row["occurred"]), float(row["ms"])) for row in rows if row["ms"] is not None
        )
        latency = [ms for _, ms in timed]
        results[f"p50_ms_{rules}"] = percentile(latency, 50)
        quarter = max(len(timed) // 4, 1)
        results[f"growth_ms_{rules}"] = percentile(latency[-quarter:], 50) - percentile(
            latency[:quarter], 50
        )
        span = timed[-1][0] + timed[-1][1] / 1000 - timed[0][0]  # first event to last effect
        results[f"kept_per_s_{rules}"] = len(timed) / max(span, 1e-3)
        results[f"p99_ms_{rules}"] = percentile(latency, 99)
        published = [
            (effects.seen[str(row["id"])] - float(row["occurred"])) * 1000
            for row in rows
            if str(row["id"]) in effects.seen
        ]
        if published:
            results[f"p50_published_ms_{rules}"] = percentile(published, 50)
            results[f"p99_published_ms_{rules}"] = percentile(published, 99)
        results[f"published_share_{rules}"] = 100.0 * len(published) / max(len(rows), 1)
        if rules == 2_000:
            results["fired_share_2000"] = 100.0 * len(rows) / max(sent, 1)
    return results


class _Effects:
    """The rules' effects as the pipeline's relay publishes them once committed: the time each
    firing's `deal.changed` (caused by the firing) arrived, by firing id."""

    def __init__(self, ctx: Context) -> None:
        self.consumer = AIOKafkaConsumer(
            DEALS, bootstrap_servers=ctx.infra.kafka_bootstrap_servers, auto_offset_reset="latest"
        )
        self.seen: dict[str, float] = {}
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _Effects:
        await self.consumer.start()
        await self.consumer.seek_to_end()
        for partition in self.consumer.assignment():
            await self.consumer.position(partition)  # positioned before anything is sent
        self.task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        await self.consumer.stop()

    async def wait(self, count: int, still: float) -> None:
        """Until ``count`` effects arrived, or none for ``still`` seconds (the relay's backlog
        after the last commit)."""
        last, since = -1, time.monotonic()
        while len(self.seen) < count and time.monotonic() - since < still:
            if len(self.seen) != last:
                last, since = len(self.seen), time.monotonic()
            await asyncio.sleep(0.5)

    async def _read(self) -> None:
        while True:
            batches = await self.consumer.getmany(timeout_ms=200)
            now = time.time()
            for records in batches.values():
                for record in records:
                    envelope = json.loads(record.value or b"{}")
                    if (envelope.get("actor") or {}).get("kind") == "automation":
                        self.seen.setdefault(str(envelope.get("causation_id")), now)


async def _publish(ctx: Context, pipeline: uuid.UUID, deals: list[uuid.UUID], rules: int) -> int:
    """`pipeline.deal.changed` at the rate for the duration; how many were sent."""
    rate, seconds = int(ctx.params["rate"]), float(ctx.params["seconds"])
    producer = AIOKafkaProducer(
        bootstrap_servers=ctx.infra.kafka_bootstrap_servers, acks="all", linger_ms=1
    )
    await producer.start()
    sent = 0
    try:
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < seconds:
            due = int(elapsed * rate) + 1
            while sent < due:
                deal = deals[sent % len(deals)]
                now = datetime.now(UTC)
                envelope = Envelope(
                    type="pipeline.deal.changed",
                    schema_version=1,
                    producer="pipeline",
                    correlation_id=uuid.uuid4().hex,
                    actor=Actor(subject="bench", kind="user"),
                    aggregate_id=str(deal),
                    occurred_at=now,
                    payload={
                        "deal_id": str(deal),
                        "version": 1,
                        "organization_id": str(uuid.uuid4()),
                        "pipeline_id": str(pipeline),
                        "changes": {
                            "custom_fields": {
                                "old": {},
                                "new": {"grade": f"v{sent % rules}"},
                            }
                        },
                    },
                )
                await producer.send(DEALS, envelope.to_bytes(), key=str(deal).encode())
                sent += 1
            await asyncio.sleep(0.002)
        await producer.flush()
    finally:
        await producer.stop()
    return sent


async def _drain(conn: asyncpg.Connection, rules: list[uuid.UUID], sent: int, wait: float) -> None:
    """Until every sent event fired its rule, or nothing moved for a while after the first
    firing, or ``wait`` s."""
    deadline, last, still = time.monotonic() + wait, -1, 0
    while time.monotonic() < deadline:
        fired = await conn.fetchval(
            "SELECT count(*) FROM automation_firings WHERE rule_id = ANY($1::uuid[])", rules
        )
        if fired >= sent:
            return
        still = still + 1 if fired == last else 0
        if still >= 20 and fired:  # none yet: a slow first inbox batch, not a stall
            return
        last = fired
        await asyncio.sleep(1.0)
