"""A newcomer consumer builds its read model from the organization state topic (ADR 18).

The directory (a real process) gets many organizations (an import, then updates, deletions,
restorations, merges and register blocks over HTTP); then a consumer with a fresh database and
new consumer groups follows the state and change topics, and its client cards must equal the
directory's organizations exactly. The same after the broker compacted the state topic, for a
fresh consumer and for ``clientele rebuild interactions organizations``.

``CLIENTELE_STATE_TEST_ORGANIZATIONS`` sets the count (2,000 by default; the issue's 10,000
takes a few minutes more on two cores).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from clientele_directory.api.blocking import organization_blocked_expr
from clientele_directory.tables import organizations
from clientele_interactions.clock import SystemClock
from clientele_interactions.events import CARDS, CardEvents
from clientele_interactions.store import client_cards
from clientele_interactions.store import metadata as interactions_metadata
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.catalog import ORGANIZATIONS, ORGANIZATIONS_STATE, REGISTRY
from clientele_shared.events.inbox import EventConsumer
from clientele_shared.events.outbox import Outbox, create_producer
from clientele_shared.events.state import subscribe_state
from clientele_shared.testing.infra import Infrastructure
from clientele_shared.testing.processes import ServiceProcess
from faststream.kafka import KafkaBroker
from sqlalchemy import any_, select

pytestmark = pytest.mark.integration

COUNT = int(os.environ.get("CLIENTELE_STATE_TEST_ORGANIZATIONS", "2000"))
VENV_BIN = Path(sys.executable).parent
Cards = dict[uuid.UUID, tuple[Any, ...]]


def _inn(rng: random.Random) -> str:
    """A random 10-digit INN with a valid check digit."""
    digits = [rng.randrange(10) for _ in range(9)]
    weights = (2, 4, 10, 3, 5, 9, 4, 6, 8)
    check = sum(w * d for w, d in zip(weights, digits, strict=True)) % 11 % 10
    return "".join(map(str, digits)) + str(check)


def _bearer(issuer: TokenIssuer, roles: list[str], directions: list[str]) -> dict[str, str]:
    token = issuer.mint("state-test", roles=roles, directions=directions, ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


class Directory:
    """Drives the directory over HTTP and remembers each organization's version."""

    def __init__(self, http: httpx.AsyncClient, me: dict[str, str], admin: dict[str, str]):
        self.http, self.me, self.admin = http, me, admin
        self.versions: dict[str, int] = {}
        self.gate = asyncio.Semaphore(8)

    async def call(self, method: str, url: str, expect: int, **kwargs: Any) -> httpx.Response:
        async with self.gate:
            response = await self.http.request(method, url, headers=self.me, **kwargs)
        assert response.status_code == expect, response.text
        return response

    def _match(self, org: str) -> dict[str, str]:
        return {"If-Match": f'W/"{self.versions[org]}"'}

    async def patch(self, org: str, **fields: Any) -> None:
        url = f"/v1/organizations/{org}"
        async with self.gate:
            response = await self.http.patch(url, json=fields, headers=self.me | self._match(org))
        assert response.status_code == 200, response.text
        self.versions[org] = response.json()["version"]

    async def delete(self, org: str) -> None:
        async with self.gate:
            response = await self.http.delete(
                f"/v1/organizations/{org}", headers=self.me | self._match(org)
            )
        assert response.status_code == 204, response.text
        self.versions[org] += 1

    async def restore(self, org: str) -> None:
        async with self.gate:
            response = await self.http.post(
                f"/v1/organizations/{org}/restore", headers=self.me | self._match(org)
            )
        assert response.status_code == 200, response.text
        self.versions[org] = response.json()["version"]

    async def merge(self, survivor: str, other: str) -> None:
        body = {"other_id": other, "other_version": self.versions[other]}
        async with self.gate:
            response = await self.http.post(
                f"/v1/organizations/{survivor}/merge",
                json=body,
                headers=self.me | self._match(survivor),
            )
        assert response.status_code == 200, response.text
        self.versions[survivor] = response.json()["survivor"]["version"]
        del self.versions[other]


async def _populate(
    url: str, url_of_database: str, issuer: TokenIssuer, direction: str, count: int
) -> Directory:
    rng = random.Random(direction)
    inns = [_inn(rng) for _ in range(30)]
    lines = ["legal_name,inn"]
    lines += [
        f"{uuid.uuid4().hex[:16]} {i},{inns[i] if i < len(inns) else ''}" for i in range(count)
    ]
    me = _bearer(issuer, ["sales"], [direction])
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        directory = Directory(http, me, _bearer(issuer, ["admin"], []))
        imported = await http.post(
            "/v1/organizations/import",
            files={"file": ("orgs.csv", "\r\n".join(lines).encode(), "text/csv")},
            data={"mode": "all_or_nothing", "directions": direction},
            headers=me,
        )
        assert imported.status_code == 200, imported.text
        assert imported.json()["created"] == count
        ids = [str(org) for org in await _ids(url_of_database, direction)]
        assert len(ids) == count
        directory.versions = dict.fromkeys(ids, 1)
        rng.shuffle(ids)
        tenth = max(count // 10, 4)
        patched, twice = ids[: 2 * tenth], ids[: tenth // 2]
        await asyncio.gather(
            *(
                directory.patch(o, short_name=f"s{i}", status="client")
                for i, o in enumerate(patched)
            )
        )
        await asyncio.gather(*(directory.patch(o, tags=["second"]) for o in twice))
        deleted = ids[2 * tenth : 2 * tenth + tenth // 2]
        await asyncio.gather(*(directory.delete(o) for o in deleted))
        await asyncio.gather(*(directory.restore(o) for o in deleted[: len(deleted) // 3]))
        pairs = ids[3 * tenth : 3 * tenth + tenth // 2]
        for survivor, other in zip(pairs[::2], pairs[1::2], strict=False):
            await directory.merge(survivor, other)
        # the register blocks five organizations by INN, then one of them again no longer
        entries = []
        for inn in inns[:5]:
            entry = await http.post(
                "/v1/unwanted",
                json={"inn": inn, "reason": "state test", "decided_by": "test"},
                headers=directory.admin,
            )
            assert entry.status_code == 201, entry.text
            entries.append(entry.json()["id"])
        removed = await http.delete(f"/v1/unwanted/{entries[0]}", headers=directory.admin)
        assert removed.status_code == 200, removed.text
    return directory


async def _ids(database_url: str, direction: str) -> list[uuid.UUID]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT id FROM organizations WHERE $1 = ANY(directions) ORDER BY id", direction
        )
        return [row["id"] for row in rows]
    finally:
        await conn.close()


async def _drained(infra: Infrastructure) -> None:
    """Wait until the directory's relay has published everything staged."""
    conn = await asyncpg.connect(infra.test_database_url("directory"))
    try:
        deadline = time.monotonic() + 120
        while await conn.fetchval("SELECT count(*) FROM outbox"):
            assert time.monotonic() < deadline, "the directory's outbox did not drain"
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _directory_state(infra: Infrastructure, direction: str) -> Cards:
    """The directory's organizations of the direction, as client cards would show them."""
    await _drained(infra)
    engine = create_engine(infra.test_database_url("directory"))
    o = organizations.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    o.id,
                    o.legal_name,
                    o.short_name,
                    o.inn,
                    o.status,
                    o.directions,
                    o.version,
                    organization_blocked_expr(),
                    o.deleted_at.is_not(None),
                    o.merged_into,
                ).where(any_(o.directions) == direction)
            )
            return {row[0]: _normal(row[1:]) for row in rows}
    finally:
        await engine.dispose()


async def _cards(database_url: str, direction: str) -> Cards:
    engine = create_engine(database_url)
    c = client_cards.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    c.organization_id,
                    c.legal_name,
                    c.short_name,
                    c.inn,
                    c.status,
                    c.directions,
                    c.version,
                    c.blocked,
                    c.deleted,
                    c.merged_into,
                ).where(any_(c.directions) == direction)
            )
            return {row[0]: _normal(row[1:]) for row in rows}
    finally:
        await engine.dispose()


def _normal(values: Any) -> tuple[Any, ...]:
    """Card values with the directions as a sorted list (compared as a set)."""
    legal_name, short_name, inn, status, directions, *rest = values
    return (legal_name, short_name, inn, status, sorted(directions), *rest)


def _fresh_database(infra: Infrastructure, service_env: dict[str, str], name: str) -> str:
    async def create() -> None:
        conn = await asyncpg.connect(infra.database_url("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    url = infra.database_url(name)
    subprocess.run(
        [str(VENV_BIN / "clientele"), "migrate", "interactions"],
        env={**service_env, "DATABASE_URL": url},
        check=True,
    )
    return url


def _drop_database(infra: Infrastructure, name: str) -> None:
    async def drop() -> None:
        conn = await asyncpg.connect(infra.database_url("postgres"))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


async def _follow(
    infra: Infrastructure, database_url: str, direction: str, expected: Cards, groups: str
) -> Cards:
    """Interactions' card subscriptions (state and change topics) with new consumer groups on a
    fresh database, until the cards of the direction equal ``expected`` or two minutes pass."""
    engine = create_engine(database_url)
    producer = create_producer(infra.kafka_bootstrap_servers)
    await producer.start()
    broker = KafkaBroker(infra.kafka_bootstrap_servers, logger=None)
    tables = interactions_metadata.tables
    consumer = EventConsumer(
        "interactions", broker, sessionmaker(engine), tables["inbox"], REGISTRY, producer
    )
    outbox = Outbox("interactions", REGISTRY, tables["outbox"])
    consumer.subscribe(
        ORGANIZATIONS, f"{groups}-changes", CardEvents(outbox, SystemClock(), timedelta(30))
    )
    subscribe_state(consumer, ORGANIZATIONS_STATE, f"{groups}-states", CARDS)
    await broker.start()
    try:
        deadline = time.monotonic() + 120
        while (cards := await _cards(database_url, direction)) != expected:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        return cards
    finally:
        await broker.stop()
        await producer.stop()
        await engine.dispose()


async def _records(infra: Infrastructure, topic: str) -> int:
    """How many records a topic holds now (read from its beginning to its end)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=infra.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        while not consumer.assignment():  # noqa: ASYNC110 (the client assigns in the background)
            await asyncio.sleep(0.1)
        partitions = list(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        count = 0
        while any([await consumer.position(tp) < end[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                count += len(records)
        return count
    finally:
        await consumer.stop()


async def _configure(infra: Infrastructure, topic: str, overrides: dict[str, str]) -> None:
    """Set the topic's configuration to the registry's plus ``overrides`` (all of it: the
    admin client's AlterConfigs replaces a topic's whole configuration)."""
    config = {key: str(value) for key, value in REGISTRY.topic(topic).config().items()}
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap_servers)
    await admin.start()
    try:
        await admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs=config | overrides)]
        )
    finally:
        await admin.close()


async def _compact(
    infra: Infrastructure, url: str, directory: Directory, org: str
) -> tuple[int, int]:
    """Make the broker compact the state topic now; the records before and after."""
    before = await _records(infra, ORGANIZATIONS_STATE)
    await _configure(
        infra,
        ORGANIZATIONS_STATE,
        {"segment.ms": "500", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"},
    )
    try:
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            directory.http = http
            await directory.patch(org, industry="rolled")  # a record after segment.ms rolls it
        await _drained(infra)
        deadline = time.monotonic() + 180
        while (after := await _records(infra, ORGANIZATIONS_STATE)) >= before:
            assert time.monotonic() < deadline, f"no compaction: {after} records of {before}"
            await asyncio.sleep(3)
    finally:
        await _configure(infra, ORGANIZATIONS_STATE, {})
    return before, after


def test_a_fresh_read_model_equals_the_directory_before_and_after_compaction(
    infra: Infrastructure,
    start_service: Any,
    service_env: dict[str, str],
    issuer: TokenIssuer,
) -> None:
    directory_process: ServiceProcess = start_service("directory")
    run = uuid.uuid4().hex[:8]
    direction = f"state-{run}"
    directory = asyncio.run(
        _populate(
            directory_process.url, infra.test_database_url("directory"), issuer, direction, COUNT
        )
    )
    expected = asyncio.run(_directory_state(infra, direction))
    assert len(expected) == COUNT
    assert sum(row[6] for row in expected.values()) >= 4  # blocked
    assert sum(row[8] is not None for row in expected.values()) >= 1  # merged

    names = [f"clientele_test_state_{run}_{n}" for n in range(2)]
    try:
        first = _fresh_database(infra, service_env, names[0])
        cards = asyncio.run(_follow(infra, first, direction, expected, f"state-test-{run}-a"))
        assert cards == expected

        live = next(o for o in directory.versions if not expected[uuid.UUID(o)][7])
        before, after = asyncio.run(_compact(infra, directory_process.url, directory, live))
        assert after < before
        expected = asyncio.run(_directory_state(infra, direction))

        second = _fresh_database(infra, service_env, names[1])
        cards = asyncio.run(_follow(infra, second, direction, expected, f"state-test-{run}-b"))
        assert cards == expected

        rebuilt = subprocess.run(
            [str(VENV_BIN / "clientele"), "rebuild", "interactions", "organizations"],
            env={**service_env, "DATABASE_URL": first},
            check=True,
            capture_output=True,
            text=True,
        )
        assert "swapped in" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr
        cards = asyncio.run(_cards(first, direction))
        assert cards == expected, rebuilt.stdout
    finally:
        for name in names:
            _drop_database(infra, name)
