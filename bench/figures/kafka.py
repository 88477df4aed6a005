"""The event backbone (outbox -> relay -> Kafka -> inbox -> effect) and raw aiokafka baselines.

The backbone figures drive the probe processes of `clientele_testkit.probe` (a relay or
producer, and a consumer, each its own process) on a fresh schema and topic; the baselines do
the same Kafka work with plain aiokafka (producer in the bench process, consumer in its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

from clientele_shared.events.outbox import Outbox
from clientele_shared.events.producer import create_producer
from clientele_testkit import probe

from bench.rawkafka import stamp
from bench.registry import Context, Metric, Target, figure
from bench.stack import ProbeStack, Topics, new_id
from bench.stats import percentile


@functools.cache
def envelope_size() -> int:
    """Bytes of a probe event's envelope, the value size the raw baselines send."""
    _, outbox, _, _ = probe.tables("bench")
    writer = Outbox(probe.PRODUCER, probe.registry(f"bench.probe.{new_id()}"), outbox)
    envelope = writer.envelope(
        probe.EVENT, probe.Happened(seq=10_000), aggregate_id=str(uuid.uuid4())
    )
    return len(envelope.to_bytes())


@dataclass
class RawRun:
    started: float
    """Wall-clock time just before the first send."""
    produced: float
    """Wall-clock time every record was acknowledged (acks=all)."""
    first: float
    last: float
    """Wall-clock times the consumer got the first and the last record."""
    samples: list[tuple[float, float]]
    """Per record: (send time, latency ms)."""


async def raw_kafka(ctx: Context, count: int, rate: float | None = None) -> RawRun:
    """Send `count` records (paced at `rate`/s, or as fast as possible) to a fresh 3-partition
    topic with the backbone's producer settings; a consumer process in a fresh group reads them."""
    bootstrap = ctx.infra.kafka_bootstrap_servers
    topic = f"bench.raw.{new_id()}"
    out = ctx.processes.logs / f"{topic}.json"
    async with Topics(bootstrap, {topic: 3}):
        consumer = await ctx.processes.start(
            "raw-consume",
            [sys.executable, "-m", "bench.rawkafka"],
            env={
                **os.environ,
                "BENCH_BOOTSTRAP": bootstrap,
                "BENCH_TOPIC": topic,
                "BENCH_GROUP": f"bench.raw.{new_id()}",
                "BENCH_COUNT": str(count),
                "BENCH_OUT": str(out),
            },
            cwd=ctx.repo,
        )
        await consumer.wait_line("ready", within=60)
        producer = create_producer(bootstrap)  # idempotent, acks=all, as the relay's
        await producer.start()
        size = envelope_size()
        try:
            started, clock = time.time(), time.monotonic()
            pending = []
            for seq in range(count):
                key = str(uuid.uuid4()).encode()
                pending.append(await producer.send(topic, stamp(size), key=key))
                if rate:
                    await asyncio.sleep(max(0.0, clock + (seq + 1) / rate - time.monotonic()))
            await asyncio.gather(*pending)
            produced = time.time()
        finally:
            await producer.stop()
        await consumer.wait_exit(within=60)
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    return RawRun(
        started,
        produced,
        result["first"],
        result["last"],
        [(float(sent), float(ms)) for sent, ms in result["samples"]],
    )


def after_warmup(samples: list[tuple[float, float]], warmup: float) -> list[float]:
    """The values of (time, value) samples from `warmup` seconds after the first one on."""
    start = min(at for at, _ in samples) + warmup
    return [value for at, value in samples if at >= start]


THROUGHPUT = {"events": 20_000}
THROUGHPUT_QUICK = {"events": 5_000}
LATENCY_NOTE = (
    " Events of the first `warmup_s` s are a warm-up and not counted (connections, metadata)."
)


@figure(
    "kafka-throughput",
    "Baseline A: raw aiokafka throughput",
    kind="baseline",
    description=(
        f"Produce `events` records of an event envelope's size ({envelope_size()} bytes of value,"
        " key = a UUID) to a"
        " fresh 3-partition topic with the backbone's producer (aiokafka, idempotent, acks=all,"
        " linger 2 ms) from the bench process, as fast as it goes; a consumer process in a fresh"
        " group reads them. Throughput: events / (last record consumed - first send)."
    ),
    metrics=[
        Metric("events_per_s", "produce -> consume", "events/s"),
        Metric("produce_per_s", "producer alone (until all acked)", "events/s"),
    ],
    params=THROUGHPUT,
    quick_params=THROUGHPUT_QUICK,
)
async def kafka_throughput(ctx: Context) -> dict[str, float]:
    count = int(ctx.params["events"])
    run = await raw_kafka(ctx, count)
    return {
        "events_per_s": count / (run.last - run.started),
        "produce_per_s": count / (run.produced - run.started),
    }


async def staged_outbox(ctx: Context, count: int) -> ProbeStack:
    """An outbox holding `count` events written by Outbox.publish, staged once per bench run
    (writing 20,000 events that way takes ~15 s) and copied into each run's fresh outbox."""
    key = f"staged-outbox-{count}"
    if key not in ctx.shared:
        template = ProbeStack(ctx, kafka=False)
        await ctx.cleanup.enter_async_context(template)
        await template.stage(count)
        ctx.shared[key] = template
    staged: ProbeStack = ctx.shared[key]
    return staged


@figure(
    "backbone-throughput",
    "Figure 1: sustained throughput through the event backbone",
    kind="figure",
    description=(
        "A fresh outbox holds `events` events (written once per bench run by Outbox.publish, as"
        " a service does, and copied in; not timed). One consumer process (probe `consume`:"
        " EventConsumer, inbox and effect rows in one transaction, offsets committed after it;"
        " topic of 3 partitions) is started and its group joined, then one relay process"
        " (OutboxRelay, `relay_batch` events a batch). Throughput: effects / (last effect's"
        " applied_at, DB clock - the"
        " relay's ready line), counted when all `events` are applied or `max_s` s after the"
        " relay is ready, whichever comes first (the run stays bounded; events applied shows"
        " which)."
        " One consumer process, so this is also the figure per consumer. No event may be"
        " applied twice; without the cap, every event must be applied."
    ),
    metrics=[
        Metric(
            "events_per_s",
            "outbox -> effect, per consumer",
            "events/s",
            target=Target(">=", 2000),
            baseline="kafka-throughput.events_per_s",
        ),
        Metric("applied", "events applied (all, or by the cap)", "events"),
    ],
    params={**THROUGHPUT, "max_s": 12, "relay_batch": 500},
    quick_params={**THROUGHPUT_QUICK, "max_s": 8},
    timeout=240,
)
async def backbone_throughput(ctx: Context) -> dict[str, float]:
    count, cap = int(ctx.params["events"]), float(ctx.params["max_s"])
    staged = await staged_outbox(ctx, count)
    async with ProbeStack(ctx) as stack:
        if await stack.copy_outbox(staged) != count:
            raise RuntimeError("the staged outbox lost events")
        await stack.start_consumer()
        relay = await stack.start("relay", PROBE_RELAY_BATCH=str(ctx.params["relay_batch"]))
        started = await relay.wait_line("ready", within=60)
        await stack.wait_applied(count, until=started + cap)
        rows, distinct, last = await stack.effects_summary()
    if rows != distinct:
        raise RuntimeError(f"{rows - distinct} events were applied more than once")
    if rows < count:
        ctx.notes.append(
            f"capped: {rows:,} of {count:,} events applied {cap:g} s after the relay was ready"
        )
    return {"events_per_s": rows / (last - started), "applied": rows}


LATENCY = {"rate": 500, "seconds": 20, "warmup_s": 1.0}
LATENCY_QUICK = {"seconds": 8}


@figure(
    "kafka-latency",
    "Baseline B: raw aiokafka latency at a steady rate",
    kind="baseline",
    description=(
        "The bench process sends `rate` records/s for `seconds` s (value: send time + padding to"
        " an envelope's size; producer as in Baseline A) to a fresh 3-partition topic; a consumer"
        " process in a fresh group notes each record's arrival. Latency: arrival - send time,"
        " same machine clock." + LATENCY_NOTE
    ),
    metrics=[
        Metric("p50_ms", "p50 send -> consumed", "ms", higher_is_better=False),
        Metric("p99_ms", "p99 send -> consumed", "ms", higher_is_better=False),
        Metric("rate", "rate achieved by the producer", "events/s"),
    ],
    params={**LATENCY, "seconds": 6},
    quick_params={"seconds": 4},
)
async def kafka_latency(ctx: Context) -> dict[str, float]:
    rate, seconds = float(ctx.params["rate"]), float(ctx.params["seconds"])
    count = int(rate * seconds)
    run = await raw_kafka(ctx, count, rate)
    latencies = after_warmup(run.samples, float(ctx.params["warmup_s"]))
    sent = [at for at, _ in run.samples]
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "rate": (count - 1) / (max(sent) - min(sent)),
    }


@figure(
    "backbone-latency",
    "Figure 2: end-to-end latency through the event backbone at a steady rate",
    kind="figure",
    description=(
        "One consumer process as in Figure 1; one probe `produce` process writes `rate` events/s"
        " for `seconds` s, each in its own transaction through Outbox.publish (its commit wakes"
        " the relay running in the same process, ADR 17; `relay_batch` events a batch). Latency"
        " per event:"
        " the effect's applied_at (clock_timestamp() in the consumer's transaction, just before"
        " its commit) - the envelope's occurred_at (set just before the producer's transaction;"
        " same machine clock)." + LATENCY_NOTE + " Production ends when all are written or"
        " `drain_s` s after the planned production time; the events written by then count, and"
        " those still in flight get `grace_s` s more to be applied. If the producer fell behind"
        " `rate`, the latency is that at the rate it achieved (shown). Events written but still"
        " not applied (pending > 0: the backbone did not keep up) make the percentiles, those of"
        " the applied events, lower bounds of the real ones (shown as ≥)."
    ),
    metrics=[
        Metric(
            "p50_ms",
            "p50 occurred -> applied",
            "ms",
            target=Target("<", 20),
            baseline="kafka-latency.p50_ms",
            higher_is_better=False,
        ),
        Metric(
            "p99_ms",
            "p99 occurred -> applied",
            "ms",
            target=Target("<", 100),
            baseline="kafka-latency.p99_ms",
            higher_is_better=False,
        ),
        Metric("rate", "rate achieved by the producer", "events/s", baseline="kafka-latency.rate"),
        Metric(
            "pending_pct",
            "written but not applied by the end",
            "% of written",
            higher_is_better=False,
        ),
    ],
    params={**LATENCY, "drain_s": 5, "grace_s": 2, "relay_batch": 500},
    quick_params={**LATENCY_QUICK, "drain_s": 3},
    timeout=180,
)
async def backbone_latency(ctx: Context) -> dict[str, float]:
    rate, seconds = float(ctx.params["rate"]), float(ctx.params["seconds"])
    count = int(rate * seconds)
    async with ProbeStack(ctx) as stack:
        await stack.start_consumer()
        producer = await stack.start(
            "produce",
            PROBE_COUNT=str(count),
            PROBE_RATE=f"{rate:g}",
            PROBE_RELAY_BATCH=str(ctx.params["relay_batch"]),
        )
        began = await producer.wait_line("ready", within=60)
        until = began + seconds + float(ctx.params["drain_s"])
        with contextlib.suppress(TimeoutError):  # a producer behind its rate is cut off
            await producer.wait_line("produced", within=max(0.1, until - time.time()))
        await stack.wait_applied(count, until=until)
        # the events written by now count; those still in flight get `grace_s` to arrive
        written = await stack.produced()
        grace = time.time() + float(ctx.params["grace_s"])
        while (applied := await stack.applied_below(written)) < written and time.time() < grace:
            ctx.processes.check()
            await asyncio.sleep(0.1)
        await producer.stop()
        rows, distinct, _ = await stack.effects_summary()
        times = await stack.effect_times(below=written)
    if rows != distinct:
        raise RuntimeError(f"{rows - distinct} events were applied more than once")
    occurred = [o for o, _ in times]
    achieved = (len(occurred) - 1) / (max(occurred) - min(occurred))
    if written < count:
        ctx.notes.append(
            f"producer behind its rate: {written:,} of {count:,} events written in"
            f" {until - began:g} s (about {achieved:,.0f}/s)"
        )
    elif achieved < 0.95 * rate:
        ctx.notes.append(f"producer ran at about {achieved:,.0f}/s, below the planned {rate:g}/s")
    pending = written - applied
    if pending:
        ctx.lower_bounds |= {"p50_ms", "p99_ms"}
        ctx.notes.append(
            f"backbone behind: {pending:,} of {written:,} written events not applied"
            f" {until - began + float(ctx.params['grace_s']):g} s after the producer started;"
            " percentiles are lower bounds"
        )
    latencies = after_warmup([(o, (a - o) * 1000) for o, a in times], float(ctx.params["warmup_s"]))
    return {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "rate": achieved,
        "pending_pct": 100 * pending / max(written, 1),
    }
