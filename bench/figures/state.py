"""State topics (ADR 18): rebuilding a read model from a compacted state topic, and its size.

Prepared once: a fresh state topic (the registry's compaction settings) holding two snapshots of
each of `organizations` organizations (as created, then after an update), and a fresh change
topic holding their two change events (created, updated); the broker is made to compact the
state topic. Each run rebuilds interactions' client cards from the state topic into a fresh
table with `clientele_shared.rebuild.rebuild` (load aside, swap in), as `clientele rebuild
interactions organizations` does. `BENCH_STATE_ORGANIZATIONS` sets the count (producing a
million organizations' records takes about ten minutes here).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from clientele_interactions.clients.events import CARDS
from clientele_shared.db import create_engine
from clientele_shared.events.admin import ensure_topics
from clientele_shared.events.catalog import ORGANIZATIONS, ORGANIZATIONS_STATE, REGISTRY
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.producer import create_producer
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.directory import (
    OrganizationCreatedV2,
    OrganizationState,
    OrganizationUpdated,
)
from clientele_shared.events.state import StateLoader
from clientele_shared.rebuild import StateReadModel, rebuild
from sqlalchemy import MetaData, text

from bench.registry import Context, Metric, Target, figure
from bench.stack import Topics, new_id

PARAMS = {"organizations": int(os.environ.get("BENCH_STATE_ORGANIZATIONS", "1000000"))}
QUICK = {"organizations": 50_000}
STATUS_CHANGE = {"status": FieldChange(old="prospect", new="client")}


_EVENT_ID = "00000000-0000-4000-8000-0000000e0001"


def _envelope(event_type: str, payload: Any, key: str) -> bytes:
    return Envelope(
        event_id=uuid.UUID(_EVENT_ID),
        type=event_type,
        schema_version=REGISTRY.latest(event_type).version,
        producer="directory",
        correlation_id="bench",
        directions=("north",),
        aggregate_id=key,
        payload=payload.model_dump(mode="json"),
    ).to_bytes()


ORG = uuid.UUID("00000000-0000-4000-8000-00000000a001")
"""The placeholder id in the record templates."""


@functools.cache
def _templates() -> tuple[list[str], list[str]]:
    """The state records (as created, after an update) and change events (created, updated) of
    one organization as JSON, with ORG and 123456789 as placeholders (built once with the real
    schemas; each organization then costs a string replacement, not a pydantic round trip)."""
    fields: dict[str, Any] = {
        "legal_name": "ООО «Организация 123456789»",
        "inn": None,
        "directions": ["north"],
        "emails": ["info123456789@example.org"],
        "phones": [{"number": "+74955005550", "kind": "work"}],
        "legal_address": {"text": "Москва, ул. Вавилова, 123456789"},
    }
    state = [
        _envelope(
            "directory.organization.state",
            OrganizationState(
                organization_id=ORG, version=version, revision=version, status=status, **fields
            ),
            str(ORG),
        ).decode()
        for version, status in ((1, "prospect"), (2, "client"))
    ]
    changes = [
        _envelope(
            "directory.organization.created",
            OrganizationCreatedV2(organization_id=ORG, status="prospect", **fields),
            str(ORG),
        ).decode(),
        _envelope(
            "directory.organization.updated",
            OrganizationUpdated(organization_id=ORG, version=2, changes=STATUS_CHANGE),
            str(ORG),
        ).decode(),
    ]
    return state, changes


def _records(org: uuid.UUID, n: int) -> tuple[list[bytes], list[bytes]]:
    """The state records and change events of organization number ``n`` (fresh event ids)."""
    state, changes = _templates()

    def fill(template: str, revision: int | None = None) -> bytes:
        text = template.replace(str(ORG), str(org)).replace("123456789", str(n))
        text = text.replace(_EVENT_ID, str(uuid.uuid4()), 1)
        if revision is not None:
            text = text.replace('"revision":1', f'"revision":{revision}', 1).replace(
                '"revision":2', f'"revision":{revision}', 1
            )
        return text.encode()

    return (
        [fill(template, 2 * n + i) for i, template in enumerate(state, start=1)],
        [fill(template) for template in changes],
    )


async def _produce(bootstrap: str, state_topic: str, change_topic: str, count: int) -> None:
    producer = create_producer(bootstrap, linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        pending = []
        for n in range(count):
            org = uuid.uuid4()
            state, changes = _records(org, n)
            for value in state:
                pending.append(await producer.send(state_topic, value, key=str(org).encode()))
            for value in changes:
                pending.append(await producer.send(change_topic, value, key=str(org).encode()))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def _compact(bootstrap: str, topic: str, config: dict[str, str]) -> None:
    """Roll the state topic's segments and let the cleaner compact them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    topic,
                    configs=config | {"segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01"},
                )
            ]
        )
    finally:
        await admin.close()


def _size(state_dir: Path, topic: str) -> int:
    """Bytes of a topic's log segments on the local broker's disk."""
    return sum(
        path.stat().st_size for path in (state_dir / "kafka" / "data").glob(f"{topic}-*/*.log")
    )


async def _prepare(ctx: Context) -> dict[str, Any]:
    count = int(ctx.params["organizations"])
    bootstrap = ctx.infra.kafka_bootstrap_servers
    state_topic, change_topic = f"bench.state.{new_id()}", f"bench.changes.{new_id()}"
    template = REGISTRY.topic(ORGANIZATIONS_STATE)
    state = dataclasses.replace(template, name=state_topic, min_compaction_lag_ms=0)
    changes = dataclasses.replace(REGISTRY.topic(ORGANIZATIONS), name=change_topic)
    await ensure_topics(bootstrap, [state, changes])
    ctx.cleanup.push_async_exit(Topics(bootstrap, dict.fromkeys((state_topic, change_topic), 3)))
    # the change topic keeps everything (the broker's per-partition size cap would cut it)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        kept = {key: str(value) for key, value in changes.config().items()}
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, change_topic, configs=kept | {"retention.bytes": "-1"}
                )
            ]
        )
    finally:
        await admin.close()
    started = time.monotonic()
    await _produce(bootstrap, state_topic, change_topic, count)
    produce_s = time.monotonic() - started
    config = {key: str(value) for key, value in state.config().items()}
    await _compact(bootstrap, state_topic, config)
    local = ctx.infra.local_scripts
    state_dir = Path(os.environ.get("CLIENTELE_STATE_DIR", ctx.repo / ".state"))
    # a record after segment.ms rolls the active segment; then the cleaner gets a few seconds
    await asyncio.sleep(1.5)
    await _produce(bootstrap, state_topic, change_topic, 1)
    before = _size(state_dir, state_topic)
    deadline = time.monotonic() + 120
    while local is not None and time.monotonic() < deadline:
        await asyncio.sleep(5)
        now = _size(state_dir, state_topic)
        if now < 0.7 * before:
            break
    return {
        "topic": state_topic,
        "produce_s": produce_s,
        "state_bytes": _size(state_dir, state_topic) if local else 0,
        "change_bytes": _size(state_dir, change_topic) if local else 0,
    }


@figure(
    "state-rebuild",
    "State topics: rebuild a read model from the compacted state topic",
    kind="figure",
    description=(
        "`organizations` organizations, two snapshots each on a fresh compacted state topic"
        " (compacted before the runs) and two change events each on a change topic. One run:"
        " `rebuild` of interactions' client cards into a fresh table (load aside from the state"
        " topic with StateLoader, version-guarded upserts in batches, swap in). Sizes: the"
        " topics' log segments on the local broker's disk after compaction (0 when the broker"
        " is not local)."
    ),
    metrics=[
        Metric("rebuild_s", "rebuild (load + swap)", "s", Target("<", 120), higher_is_better=False),
        Metric("per_s", "snapshots applied", "records/s"),
        Metric("state_mb", "state topic after compaction", "MB", higher_is_better=False),
        Metric("change_mb", "change topic (2 events per record)", "MB", higher_is_better=False),
    ],
    params=PARAMS,
    quick_params=QUICK,
    timeout=1800.0,
)
async def state_rebuild(ctx: Context) -> dict[str, float]:
    key = f"state-rebuild-{ctx.params['organizations']}"
    if key not in ctx.shared:
        ctx.shared[key] = await _prepare(ctx)
    prepared = ctx.shared[key]
    schema = f"bench_state_{new_id()}"
    engine = create_engine(ctx.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            table = CARDS.table.to_metadata(MetaData(schema=schema))
            await conn.run_sync(table.create)
        model = StateReadModel(prepared["topic"], dataclasses.replace(CARDS, table=table))
        loader = StateLoader(
            ctx.infra.kafka_bootstrap_servers,
            prepared["topic"],
            REGISTRY,
            registered_as=ORGANIZATIONS_STATE,
        )
        started = time.monotonic()
        done = await rebuild(engine, model, loader, report=lambda _line: None)
        seconds = time.monotonic() - started
        async with engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()
    ctx.notes.append(
        f"{done.records} snapshots read (of {done.total} offsets); producing them took"
        f" {prepared['produce_s']:.0f} s"
    )
    return {
        "rebuild_s": seconds,
        "per_s": done.records / seconds,
        "state_mb": prepared["state_bytes"] / 1e6,
        "change_mb": prepared["change_bytes"] / 1e6,
    }
