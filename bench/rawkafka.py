"""Raw aiokafka consumer for the Kafka baselines, run as its own process.

`python -m bench.rawkafka` with BENCH_BOOTSTRAP, BENCH_TOPIC, BENCH_GROUP (a fresh group),
BENCH_COUNT and BENCH_OUT. Prints `ready` once the group has its partitions, consumes
BENCH_COUNT records, then writes JSON to BENCH_OUT: the wall-clock times the first and the last
record arrived and, per record, [send time, latency in ms] (arrival minus the send time the
producer put in the value's first 8 bytes, see `stamp`).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

STAMP = struct.Struct("<d")


def stamp(size: int) -> bytes:
    """A record value of `size` bytes starting with the current wall-clock time."""
    return STAMP.pack(time.time()).ljust(size, b"x")


async def consume() -> dict[str, Any]:
    env = os.environ
    count = int(env["BENCH_COUNT"])
    consumer = AIOKafkaConsumer(
        env["BENCH_TOPIC"],
        bootstrap_servers=env["BENCH_BOOTSTRAP"],
        group_id=env["BENCH_GROUP"],
        auto_offset_reset="earliest",
    )
    received = 0
    first = last = 0.0
    samples: list[tuple[float, float]] = []

    def take(batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        nonlocal received, first, last
        for records in batch.values():
            for record in records:
                now = time.time()
                first = first or now
                last = now
                received += 1
                (sent,) = STAMP.unpack_from(record.value or bytes(STAMP.size))
                samples.append((sent, (now - sent) * 1000))

    await consumer.start()
    try:
        while not consumer.assignment():
            take(await consumer.getmany(timeout_ms=100))
        print("ready", flush=True)
        while received < count:
            take(await consumer.getmany(timeout_ms=1000))
    finally:
        await consumer.stop()
    return {"first": first, "last": last, "count": received, "samples": samples}


if __name__ == "__main__":
    Path(os.environ["BENCH_OUT"]).write_text(json.dumps(asyncio.run(consume())))
