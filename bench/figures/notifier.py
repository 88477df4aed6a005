"""The notifier (issue 5): e-mails per second handed to an SMTP server, and reminder firing
precision with 100,000 scheduled reminders.

`python -m bench.figures.notifier sink` is the SMTP sink both e-mail figures send to: aiosmtpd
in its own process, accepting and discarding every message, printing `<epoch> <recipient>` per
message (and `ready` once it listens on `BENCH_SMTP_PORT`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import sys
import time
import uuid
from typing import Any

from bench.processes import Proc
from bench.registry import Context, Metric, figure
from bench.stats import percentile

NOTIFIER_TABLES = (
    "notifications, requests, deliveries, delivery_attempts, dead_letters, reminders, outbox, inbox"
)


async def start_sink(ctx: Context) -> tuple[Proc, int]:
    from clientele_testkit.processes import free_port

    port = free_port()
    sink = await ctx.processes.start(
        "smtp-sink",
        [sys.executable, "-m", "bench.figures.notifier", "sink"],
        env={**os.environ, "BENCH_SMTP_PORT": str(port)},
        cwd=ctx.repo,
    )
    await sink.wait_line("ready", within=30)
    return sink, port


def received(sink: Proc, suffix: str) -> list[float]:
    """Times the sink accepted a message for a recipient ending with `suffix`."""
    times = []
    for _, line in list(sink.lines):
        stamp, _, rcpt = line.partition(" ")
        if rcpt.endswith(suffix):
            times.append(float(stamp))
    return times


async def fresh_notifier_database(ctx: Context) -> str:
    import asyncpg

    from bench.figures.services import bench_redis_url, clear_redis, service_database

    url = await service_database(ctx, "notifier")
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"TRUNCATE {NOTIFIER_TABLES} CASCADE")
    finally:
        await conn.close()
    await clear_redis(bench_redis_url(ctx.infra.redis_url), "notifier:*")
    return url


def requests_payload(tag: str, seq: int, domains: int) -> dict[str, Any]:
    return {
        "idempotency_key": f"bench-{tag}-{seq}",
        "channel": "email",
        "kind": "bench",
        "recipients": [{"email": f"client{seq}@d{seq % domains}.{tag}.test", "name": "Клиент"}],
        "subject": "Счёт на оплату / your invoice",
        "text": "Добрый день! " + "Текст письма. " * 60,
        "html": "<p>Добрый день!</p>" + "<p>Текст письма.</p>" * 60,
        "reply_to": "manager@clientele.local",
        "list_unsubscribe": "https://clientele.local/unsubscribe/bench",
    }


@figure(
    "notifier-email",
    "Notifier: e-mails handed to an SMTP server",
    kind="figure",
    description=(
        "`emails` notification requests (one recipient each, text + HTML of ~1 KB, Reply-To,"
        " List-Unsubscribe; recipients spread over `domains` domains, so the default per-domain"
        " rate limit of 20/s does not bind) are published as `interactions.notification.requested`"
        " events on `clientele.interactions.notifications` (the relay's wire format), once the"
        " notifier process (`clientele serve notifier`, default settings: 8 workers and SMTP"
        " connections, batches of 50) has joined its consumer group. An aiosmtpd sink in its own"
        " process accepts and discards them. Rate: e-mails / (last accepted by the sink - first"
        " request published): consume, accept (request and delivery rows), claim, render, send"
        " and record, end to end. Baseline `notifier-email-direct`: the same messages (built by"
        " the notifier's own `build_message`) sent by aiosmtplib from the bench process over"
        " the same number of reused connections."
    ),
    metrics=[
        Metric(
            "emails_per_s",
            "e-mails accepted by the SMTP server",
            "mails/s",
            baseline="notifier-email-direct.emails_per_s",
        ),
        Metric("first_ms", "first e-mail after its request", "ms", higher_is_better=False),
    ],
    params={"emails": 3000, "domains": 300},
    quick_params={"emails": 1000},
    timeout=240,
)
async def notifier_email(ctx: Context) -> dict[str, float]:
    from aiokafka import AIOKafkaProducer
    from clientele_shared.events.catalog import REGISTRY, notification_requests
    from clientele_shared.events.envelope import Envelope

    from bench.figures.services import start_service
    from bench.stack import new_id, wait_group_stable

    count, domains = int(ctx.params["emails"]), int(ctx.params["domains"])
    url = await fresh_notifier_database(ctx)
    sink, port = await start_sink(ctx)
    await start_service(
        ctx,
        "notifier",
        url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        RUN_CONSUMERS="true",
    )
    bootstrap = ctx.infra.kafka_bootstrap_servers
    await wait_group_stable(bootstrap, "notifier.requests-interactions", within=60)
    tag = f"b{new_id()}"
    event_type = "interactions.notification.requested"
    spec = REGISTRY.spec(event_type, 1)
    envelopes = []
    for seq in range(count):
        payload = requests_payload(tag, seq, domains)
        spec.payload.model_validate(payload)
        envelopes.append(
            Envelope(
                type=event_type,
                schema_version=1,
                producer="interactions",
                correlation_id=str(uuid.uuid4()),
                aggregate_id=str(uuid.uuid4()),
                payload=payload,
            )
        )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        started = time.time()
        sends = [
            await producer.send(
                notification_requests("interactions"),
                value=envelope.to_bytes(),
                key=envelope.aggregate_id.encode(),
            )
            for envelope in envelopes
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    suffix = f".{tag}.test"
    deadline = time.time() + float(ctx.params.get("drain_s", 150))
    while len(got := received(sink, suffix)) < count and time.time() < deadline:
        ctx.processes.check()
        await asyncio.sleep(0.2)
    others = sum(1 for _, line in sink.lines if line != "ready") - len(got)
    if others:
        ctx.notes.append(f"{others} e-mails of earlier requests on the topic were sent too")
    if len(got) < count:
        ctx.notes.append(f"only {len(got)} of {count} e-mails arrived in time")
        ctx.lower_bounds.add("emails_per_s")
    return {
        "emails_per_s": len(got) / (max(got) - started),
        "first_ms": (min(got) - started) * 1000,
    }


@figure(
    "notifier-email-direct",
    "Baseline: aiosmtplib straight to the SMTP server",
    kind="baseline",
    description=(
        "The messages of `notifier-email` (built before the clock starts with the notifier's"
        " `build_message`) sent by aiosmtplib from the bench process to the same aiosmtpd sink"
        " (its own process) over `connections` connections kept open, as the notifier's pool"
        " does. Rate: e-mails / time until the last send returned."
    ),
    metrics=[Metric("emails_per_s", "e-mails accepted by the SMTP server", "mails/s")],
    params={"emails": 3000, "domains": 300, "connections": 8},
    quick_params={"emails": 1000},
    timeout=120,
)
async def notifier_email_direct(ctx: Context) -> dict[str, float]:
    import aiosmtplib
    from clientele_notifier.channels.email import build_message
    from clientele_notifier.deliveries.rules import render
    from clientele_shared.events.schemas.notifications import NotificationRequested

    from bench.stack import new_id

    count, domains = int(ctx.params["emails"]), int(ctx.params["domains"])
    connections = int(ctx.params["connections"])
    sink, port = await start_sink(ctx)
    tag = f"b{new_id()}"
    messages = []
    for seq in range(count):
        request = NotificationRequested.model_validate(requests_payload(tag, seq, domains))
        content = render(request.subject, request.text, request.html, None, {})
        messages.append(
            build_message(
                delivery_id=uuid.uuid4(),
                sender="Clientele <noreply@clientele.local>",
                to=str(request.recipients[0].email),
                to_name=request.recipients[0].name,
                content=content,
                reply_to=request.reply_to,
                list_unsubscribe=request.list_unsubscribe,
                attachments=[],
                message_id_domain="clientele.local",
            )
        )
    queue = list(reversed(messages))

    async def worker() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await client.connect()
        try:
            while queue:
                await client.send_message(queue.pop())
        finally:
            with contextlib.suppress(Exception):
                await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    seconds = time.perf_counter() - started
    suffix = f".{tag}.test"
    for _ in range(600):  # the sink prints each message a moment after accepting it
        if len(received(sink, suffix)) >= count:
            break
        await asyncio.sleep(0.05)
    else:
        ctx.notes.append(f"the sink saw {len(received(sink, suffix))} of {count} e-mails")
    return {"emails_per_s": count / seconds}


@figure(
    "notifier-reminders",
    "Notifier: reminder firing precision",
    kind="figure",
    description=(
        "`reminders` in-app reminders for 1,000 employees are written into the notifier's"
        " record of truth and its schedule index as its `reminder.scheduled` handler does (one"
        " COPY into `reminders`, then ZADD into the Redis sorted set its scheduler polls), with"
        " due times spread evenly over `spread_s` s starting `lead_s` s later, while the"
        " notifier process runs (default settings: 100 ms tick, claims of up to 500, 2 claims"
        " under way at once; its consumers off, so it reads no shared topic and the figure"
        " measures firing alone (`notifier-reminder-intake` measures scheduling); its relay"
        " off, so the fired and delivery events stay in its outbox instead of flooding the"
        " shared topics). Each reminder fires once, in the same transaction storing its in-app"
        " notification, delivery, log row and the `reminder.fired` and delivery result events;"
        " delay = fired_at - due_at as the notifier recorded them in PostgreSQL. Fired/s ="
        " reminders fired / (last fired_at - first due_at)."
    ),
    metrics=[
        Metric("p50_ms", "delay after the due time, p50", "ms", higher_is_better=False),
        Metric("p99_ms", "delay after the due time, p99", "ms", higher_is_better=False),
        Metric("max_ms", "delay after the due time, max", "ms", higher_is_better=False),
        Metric("fired", "reminders fired (of those scheduled)", "%"),
        Metric("fired_per_s", "reminders fired per second", "1/s"),
    ],
    params={"reminders": 100_000, "spread_s": 25.0, "lead_s": 10.0, "drain_s": 60.0},
    quick_params={"reminders": 10_000, "spread_s": 20.0},
    timeout=300,
)
async def notifier_reminders(ctx: Context) -> dict[str, float]:
    import asyncpg
    from redis.asyncio import Redis

    from bench.figures.services import bench_redis_url, start_service

    count = int(ctx.params["reminders"])
    spread, lead = float(ctx.params["spread_s"]), float(ctx.params["lead_s"])
    url = await fresh_notifier_database(ctx)
    await start_service(ctx, "notifier", url, RUN_CONSUMERS="false", RUN_RELAY="false")
    now = dt.datetime.now(dt.UTC)
    first = now + dt.timedelta(seconds=lead)
    step = dt.timedelta(seconds=spread / count)
    records = []
    for seq in range(count):
        recipient = {"employee_id": f"bench-employee-{seq % 1000}"}
        records.append(
            (
                uuid.uuid4(),
                "interactions",
                "scheduled",
                first + step * seq,
                json.dumps(recipient),
                "inapp",
                "reminder",
                f"Call the client back #{seq}",
                "Planned contact is due",
                "{}",
                now,
            )
        )
    conn = await asyncpg.connect(url)
    redis = Redis.from_url(bench_redis_url(ctx.infra.redis_url))
    try:
        await conn.copy_records_to_table(
            "reminders",
            records=records,
            columns=[
                "id",
                "requester",
                "state",
                "due_at",
                "recipient",
                "channel",
                "kind",
                "subject",
                "text",
                "payload",
                "changed_by_event_at",
            ],
        )
        for start in range(0, count, 5000):
            await redis.zadd(
                "notifier:reminders:due",
                {str(r[0]): r[3].timestamp() for r in records[start : start + 5000]},
            )
        staged = time.time()
        if staged > first.timestamp():
            ctx.notes.append(f"staging ended {staged - first.timestamp():.1f}s after the first due")
        deadline = first.timestamp() + spread + float(ctx.params["drain_s"])
        while time.time() < deadline:
            ctx.processes.check()
            left = await conn.fetchval("SELECT count(*) FROM reminders WHERE state = 'scheduled'")
            if left == 0:
                break
            await asyncio.sleep(0.5)
        delays = [
            float(row[0]) * 1000
            for row in await conn.fetch(
                "SELECT extract(epoch FROM fired_at - due_at)::float8 FROM reminders"
                " WHERE state = 'fired'"
            )
        ]
        span = await conn.fetchval(
            "SELECT extract(epoch FROM max(fired_at) - min(due_at))::float8 FROM reminders"
            " WHERE state = 'fired'"
        )
    finally:
        await redis.aclose()
        await conn.close()
    if len(delays) < count:
        ctx.notes.append(f"only {len(delays)} of {count} reminders fired in time")
    return {
        "p50_ms": percentile(delays, 50),
        "p99_ms": percentile(delays, 99),
        "max_ms": max(delays, default=float("nan")),
        "fired": 100 * len(delays) / count,
        "fired_per_s": len(delays) / span if span else float("nan"),
    }


@figure(
    "notifier-reminder-intake",
    "Notifier: scheduling reminders from events",
    kind="figure",
    description=(
        "`reminders` `interactions.reminder.scheduled` events (in-app, due a day later, for"
        " 1,000 employees) are published on `clientele.interactions.notifications` in the"
        " relay's wire format once the notifier process (`clientele serve notifier`, default"
        " settings: batches of 500 events per inbox transaction; its workers and relay off) has"
        " joined its consumer group. Each is applied through the inbox (upsert into `reminders`)"
        " and indexed in the Redis sorted set. Rate: reminders / (the moment all are in"
        " PostgreSQL and in the index - first event published); the part of the delay before"
        " a reminder can fire that comes from scheduling it."
    ),
    metrics=[
        Metric("reminders_per_s", "reminders scheduled (row and index entry)", "1/s"),
        Metric("seconds", "until all were scheduled", "s", higher_is_better=False),
    ],
    params={"reminders": 100_000, "drain_s": 180.0},
    quick_params={"reminders": 20_000},
    timeout=300,
)
async def notifier_reminder_intake(ctx: Context) -> dict[str, float]:
    import asyncpg
    from aiokafka import AIOKafkaProducer
    from clientele_shared.events.catalog import notification_requests
    from clientele_shared.events.envelope import Envelope
    from redis.asyncio import Redis

    from bench.figures.services import bench_redis_url, start_service
    from bench.stack import new_id, wait_group_stable

    count = int(ctx.params["reminders"])
    url = await fresh_notifier_database(ctx)
    await start_service(
        ctx, "notifier", url, RUN_CONSUMERS="true", RUN_RELAY="false", RUN_WORKERS="false"
    )
    bootstrap = ctx.infra.kafka_bootstrap_servers
    await wait_group_stable(bootstrap, "notifier.requests-interactions", within=60)
    tag = f"bench-{new_id()}"
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    envelopes: list[tuple[str, bytes]] = []
    for seq in range(count):
        reminder_id = str(uuid.uuid4())
        envelopes.append(
            (
                reminder_id,
                Envelope(
                    type="interactions.reminder.scheduled",
                    schema_version=1,
                    producer="interactions",
                    correlation_id=str(uuid.uuid4()),
                    aggregate_id=reminder_id,
                    payload={
                        "reminder_id": reminder_id,
                        "due_at": due,
                        "recipient": {"employee_id": f"bench-employee-{seq % 1000}"},
                        "subject": f"{tag} call the client back #{seq}",
                        "text": "Planned contact is due",
                    },
                ).to_bytes(),
            )
        )
    conn = await asyncpg.connect(url)
    redis = Redis.from_url(bench_redis_url(ctx.infra.redis_url))
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        started = time.time()
        sends = [
            await producer.send(
                notification_requests("interactions"), value=envelope, key=key.encode()
            )
            for key, envelope in envelopes
        ]
        await asyncio.gather(*sends)
        deadline = started + float(ctx.params["drain_s"])
        ids = [key for key, _ in envelopes]
        stored = indexed = 0
        while time.time() < deadline:
            ctx.processes.check()
            stored = await conn.fetchval(
                "SELECT count(*) FROM reminders WHERE subject LIKE $1", f"{tag} %"
            )
            if stored >= count:
                indexed = 0
                for first in range(0, count, 10_000):
                    scores = await redis.zmscore(
                        "notifier:reminders:due", ids[first : first + 10_000]
                    )
                    indexed += sum(score is not None for score in scores)
                if indexed >= count:
                    break
            await asyncio.sleep(0.1)
        done = time.time()
    finally:
        await producer.stop()
        await redis.aclose()
        await conn.close()
    if stored < count or indexed < stored:
        ctx.notes.append(f"only {stored} of {count} reminders stored, {indexed} indexed in time")
        ctx.lower_bounds.add("reminders_per_s")
    return {"reminders_per_s": stored / (done - started), "seconds": done - started}


def _sink() -> None:
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            now = time.time()
            for rcpt in envelope.rcpt_tos:
                sys.stdout.write(f"{now:.6f} {rcpt}\n")
            sys.stdout.flush()
            return "250 Message accepted"

    port = int(os.environ["BENCH_SMTP_PORT"])
    controller = Controller(Discard(), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__" and sys.argv[1:] == ["sink"]:
    _sink()
