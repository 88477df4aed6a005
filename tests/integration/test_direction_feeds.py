"""Per-direction feeds (ADR 26) against the real directory, Kafka and PostgreSQL.

An ERP principal limited to one direction reads only that direction's feed topics: each must carry
exactly that direction's events and snapshots, a record that leaves the direction is seen leaving
(its update, then a tombstone in the state feed), and nothing of another direction gets in.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.feeds import feed_topic
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, running

pytestmark = pytest.mark.integration
Record = tuple[str, Envelope | None]


@pytest.fixture(scope="module")
def directory(
    infra: Infrastructure,
    service_env: dict[str, str],
    migrated: None,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    url = infra.test_database_url("directory")
    logs = tmp_path_factory.mktemp("directory")
    with running("directory", infra, service_env, url, issuer, logs) as stack:
        yield stack


async def _read(bootstrap: str, topic: str, until: int, within: float = 30) -> list[Record]:
    """Every record of a topic from its start (key, envelope or None for a tombstone), once at
    least ``until`` arrived (the topic is created by the relay: wait for it)."""
    deadline = time.monotonic() + within
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while topic not in await admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} was never created"
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Record] = []

    async def fetch(timeout_ms: int) -> None:
        for partition_records in (await consumer.getmany(timeout_ms=timeout_ms)).values():
            records.extend(
                (
                    (r.key or b"").decode(),
                    Envelope.from_bytes(r.value) if r.value is not None else None,
                )
                for r in partition_records
            )

    try:
        while len(records) < until and time.monotonic() < deadline:
            await fetch(300)
        await asyncio.sleep(0.5)  # anything more that should not be there
        await fetch(500)
    finally:
        await consumer.stop()
    return records


async def test_a_direction_feed_carries_its_records_and_sees_them_leave(
    directory: Stack, infra: Infrastructure
) -> None:
    run = uuid.uuid4().hex[:8]
    north, south = f"feed-n-{run}", f"feed-s-{run}"
    bootstrap = infra.kafka_bootstrap_servers
    async with httpx.AsyncClient(base_url=directory.url, timeout=30) as http:

        async def create(name: str, direction: str) -> dict[str, Any]:
            body = {"legal_name": name, "directions": [direction]}
            response = await http.post(
                "/v1/organizations", json=body, headers=directory.user([direction])
            )
            assert response.status_code == 201, response.text
            created: dict[str, Any] = response.json()
            return created

        kept = await create("Северная «Ромашка»", north)
        moved = await create("Переезжающая", north)
        foreign = await create("Южная", south)
        response = await http.patch(
            f"/v1/organizations/{moved['id']}",
            json={"directions": [south]},
            headers=directory.user([], roles=["admin"]) | {"If-Match": 'W/"1"'},
        )
        assert response.status_code == 200, response.text

    changes = await _read(bootstrap, feed_topic(north).name, until=3)
    by_key: dict[str, list[str]] = {}
    for key, envelope in changes:
        assert envelope is not None
        by_key.setdefault(key, []).append(envelope.type)
    assert by_key == {
        kept["id"]: ["directory.organization.created"],
        moved["id"]: ["directory.organization.created", "directory.organization.updated"],
    }, "the north feed holds north's events, the move out included, and nothing of the south"

    state = await _read(bootstrap, feed_topic(north, state=True).name, until=3)
    last = dict(state)  # the latest per key (a key keeps its order: one partition)
    assert set(last) == {kept["id"], moved["id"]}
    assert last[kept["id"]] is not None
    assert last[moved["id"]] is None, "the record that left ends as a tombstone"
    assert any(key == moved["id"] and envelope for key, envelope in state), "it was there before"

    south_state = await _read(bootstrap, feed_topic(south, state=True).name, until=2)
    latest = dict(south_state)
    assert set(latest) == {foreign["id"], moved["id"]}
    moved_now = latest[moved["id"]]
    assert moved_now is not None
    assert moved_now.directions == (south,)
