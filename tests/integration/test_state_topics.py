"""A newcomer consumer builds its read models from the directory's state topics (ADR 18).

The directory (a real process) gets many organizations (an import, then updates, deletions,
restorations, merges and register blocks over HTTP) and lists (static ones with members added
by filter and by hand, removed and added again, moved by merges; a dynamic one; a deleted one);
then consumers with fresh databases and new consumer groups follow the state and change topics:
interactions' client cards must equal the directory's organizations, and campaigns' lists and
members the directory's lists, exactly; the register's state topic read from its beginning
equals the directory's register. The same after the broker compacted the state topics, for
fresh consumers and for ``clientele rebuild``.

``CLIENTELE_STATE_TEST_ORGANIZATIONS`` sets the count (2,000 by default; the issue's 10,000
passed in 188 s on a quiet machine, ADR 18).
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from clientele_campaigns.lists.queries import LISTS, MEMBERS
from clientele_campaigns.tables import directory_list_members, directory_lists
from clientele_campaigns.tables import metadata as campaigns_metadata
from clientele_directory.blocking import organization_blocked_expr
from clientele_directory.tables import (
    organization_list_members,
    organization_lists,
    organizations,
    unwanted_register,
)
from clientele_interactions.clients.events import CARDS, CardEvents
from clientele_interactions.clock import SystemClock
from clientele_interactions.tables import client_cards
from clientele_interactions.tables import metadata as interactions_metadata
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import create_engine, sessionmaker
from clientele_shared.events.catalog import (
    LIST_MEMBERS_STATE,
    LISTS_STATE,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    REGISTER_STATE,
    REGISTRY,
)
from clientele_shared.events.inbox import EventConsumer
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.producer import create_producer
from clientele_shared.events.schemas.directory import RegisterEntryState
from clientele_shared.events.state import Removal, StateLoader, subscribe_state
from clientele_testkit.databases import drop_database
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess
from faststream.kafka import KafkaBroker
from sqlalchemy import any_, select

pytestmark = pytest.mark.integration

COUNT = int(os.environ.get("CLIENTELE_STATE_TEST_ORGANIZATIONS", "2000"))
VENV_BIN = Path(sys.executable).parent
Cards = dict[uuid.UUID, tuple[Any, ...]]
Lists = tuple[dict[uuid.UUID, tuple[Any, ...]], set[tuple[uuid.UUID, uuid.UUID]]]
"""Lists (name, kind, filter, directions, deleted, version) and their members."""


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
        self.entries: list[str] = []
        self.gate = asyncio.Semaphore(8)

    async def call(
        self,
        method: str,
        url: str,
        expect: int,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        async with self.gate:
            response = await self.http.request(method, url, headers=headers or self.me, **kwargs)
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
    async with httpx.AsyncClient(base_url=url, timeout=600 + count // 5) as http:
        directory = Directory(http, me, _bearer(issuer, ["admin"], []))
        imported = await http.post(
            "/v1/organizations/import",
            files={"file": ("orgs.csv", "\r\n".join(lines).encode(), "text/csv")},
            data={"mode": "all_or_nothing", "directions": direction},
            headers=me,
        )
        assert imported.status_code == 202, imported.text
        job = imported.json()
        while job["state"] in ("queued", "running"):  # the import runs as a job (ADR 41)
            await asyncio.sleep(0.5)
            job = (await http.get(imported.headers["Location"], headers=me)).json()
        assert job["state"] == "succeeded", job
        assert job["counts"]["created"] == count
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
        await _lists(directory, direction, ids)
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
        directory.entries = entries
    return directory


async def _lists(directory: Directory, direction: str, ids: list[str]) -> None:
    """Static lists (every organization by filter, and some by hand, removed and added back),
    a dynamic list, a deleted list; merges later move some memberships."""

    async def create(name: str, **fields: Any) -> str:
        body = {"name": name, "directions": [direction], **fields}
        return str((await directory.call("POST", "/v1/lists", 201, json=body)).json()["id"])

    def members(list_id: str, action: str, orgs: list[str]) -> Any:
        url = f"/v1/lists/{list_id}/members{action}"
        return directory.call("POST", url, 200, json={"organization_ids": orgs})

    every = await create("every")
    await directory.call(
        "POST", f"/v1/lists/{every}/members", 200, json={"filter": {"directions": [direction]}}
    )
    await directory.call(
        "PATCH",
        f"/v1/lists/{every}",
        200,
        json={"name": "every one"},
        headers=directory.me | {"If-Match": 'W/"1"'},
    )
    some = await create("some")
    await members(some, "", ids[:50])
    await members(some, "/remove", ids[:20])
    await members(some, "", ids[:5])
    await create("second", kind="dynamic", filter={"tags": ["second"]})
    gone = await create("gone")
    await members(gone, "", ids[50:60])
    await directory.call(
        "DELETE", f"/v1/lists/{gone}", 204, headers=directory.me | {"If-Match": 'W/"1"'}
    )


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


async def _directory_lists(infra: Infrastructure, direction: str) -> Lists:
    """The directory's lists of the direction and their members."""
    await _drained(infra)
    engine = create_engine(infra.test_database_url("directory"))
    c, m = organization_lists.c, organization_list_members.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    c.id,
                    c.name,
                    c.kind,
                    c.filter,
                    c.directions,
                    c.deleted_at.is_not(None),
                    c.version,
                ).where(any_(c.directions) == direction)
            )
            found = {row[0]: _list(row[1:]) for row in rows}
            members = await conn.execute(
                select(m.list_id, m.organization_id).where(m.list_id.in_(list(found)))
            )
            return found, {(row[0], row[1]) for row in members}
    finally:
        await engine.dispose()


async def _campaigns_lists(database_url: str, direction: str) -> Lists:
    """Campaigns' read model of the lists of the direction and their members."""
    engine = create_engine(database_url)
    c, m = directory_lists.c, directory_list_members.c
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(
                    c.list_id, c.name, c.kind, c.filter, c.directions, c.deleted, c.version
                ).where(any_(c.directions) == direction)
            )
            found = {row[0]: _list(row[1:]) for row in rows}
            members = await conn.execute(
                select(m.list_id, m.organization_id).where(m.list_id.in_(list(found)))
            )
            return found, {(row[0], row[1]) for row in members}
    finally:
        await engine.dispose()


def _list(values: Any) -> tuple[Any, ...]:
    name, kind, filter_, directions, *rest = values
    return (name, kind, filter_, sorted(directions), *rest)


async def _register(infra: Infrastructure, entries: list[str]) -> dict[uuid.UUID, Any]:
    """The directory's register entries of the test, as their state records show them."""
    engine = create_engine(infra.test_database_url("directory"))
    r = unwanted_register.c
    wanted = [uuid.UUID(entry) for entry in entries]
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                select(r.id, r.basis, r.inn, r.organization_id, r.removed_at.is_(None)).where(
                    r.id.in_(wanted)
                )
            )
            return {row[0]: tuple(row[1:]) for row in rows}
    finally:
        await engine.dispose()


async def _register_from_topic(infra: Infrastructure, entries: list[str]) -> dict[uuid.UUID, Any]:
    """The register as a newcomer reads it from the state topic's beginning."""
    wanted = {uuid.UUID(entry) for entry in entries}
    found: dict[uuid.UUID, Any] = {}

    async def apply(snapshots: list[Any], _removed: list[Removal]) -> None:
        for state in snapshots:
            assert isinstance(state, RegisterEntryState)
            if state.entry_id in wanted:
                known = found.get(state.entry_id)
                if known is None or (state.version, state.revision) > known[0]:
                    values = (state.basis, state.inn, state.organization_id, state.active)
                    found[state.entry_id] = ((state.version, state.revision), values)

    await StateLoader(infra.kafka_bootstrap_servers, REGISTER_STATE, REGISTRY).load(apply)
    return {entry: values for entry, (_, values) in found.items()}


def _fresh_database(
    infra: Infrastructure, service_env: dict[str, str], name: str, service: str
) -> str:
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
        [str(VENV_BIN / "clientele"), "migrate", service],
        env={**service_env, "DATABASE_URL": url},
        check=True,
    )
    return url


async def _follow(
    infra: Infrastructure,
    databases: tuple[str, str],
    direction: str,
    expected: tuple[Cards, Lists],
    groups: str,
    settled: Callable[[], Awaitable[bool]] | None = None,
) -> tuple[Cards, Lists]:
    """Interactions' card subscriptions (state and change topics) and campaigns' lists
    subscriptions (state topics) with new consumer groups on fresh databases, until the cards
    and lists of the direction equal ``expected`` (and ``settled()`` holds) or fifteen minutes
    pass."""
    cards_url, lists_url = databases
    engines = [create_engine(url) for url in databases]
    producer = create_producer(infra.kafka_bootstrap_servers)
    await producer.start()
    broker = KafkaBroker(infra.kafka_bootstrap_servers, logger=None)
    tables = interactions_metadata.tables
    consumer = EventConsumer(
        "interactions", broker, sessionmaker(engines[0]), tables["inbox"], REGISTRY, producer
    )
    outbox = Outbox("interactions", REGISTRY, tables["outbox"])
    consumer.subscribe(
        ORGANIZATIONS, f"{groups}-changes", CardEvents(outbox, SystemClock(), timedelta(30))
    )
    subscribe_state(consumer, ORGANIZATIONS_STATE, f"{groups}-states", CARDS)
    inbox = campaigns_metadata.tables["inbox"]
    lists = EventConsumer("campaigns", broker, sessionmaker(engines[1]), inbox, REGISTRY, producer)
    subscribe_state(lists, LISTS_STATE, f"{groups}-lists", LISTS)
    subscribe_state(lists, LIST_MEMBERS_STATE, f"{groups}-members", MEMBERS)
    await broker.start()
    try:
        deadline = time.monotonic() + 900  # the test broker's whole history, on busy cores
        while (
            found := (
                await _cards(cards_url, direction),
                await _campaigns_lists(lists_url, direction),
            )
        ) != expected or (settled is not None and not await settled()):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        return found
    finally:
        await broker.stop()
        await producer.stop()
        for engine in engines:
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


COMPACTED = (ORGANIZATIONS_STATE, LIST_MEMBERS_STATE)


async def _compact(
    infra: Infrastructure, url: str, directory: Directory, org: str, list_id: str
) -> dict[str, tuple[int, int]]:
    """Make the broker compact the organizations' and the list members' state topics now; the
    records of each before and after."""
    before = {topic: await _records(infra, topic) for topic in COMPACTED}
    quick = {"segment.ms": "500", "min.cleanable.dirty.ratio": "0.01", "min.compaction.lag.ms": "0"}
    for topic in COMPACTED:
        await _configure(infra, topic, quick)
    try:
        await asyncio.sleep(1.5)
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            directory.http = http
            # a record on each topic after segment.ms rolls its segment
            await directory.patch(org, industry="rolled")
            await directory.call(
                "POST",
                f"/v1/lists/{list_id}/members/remove",
                200,
                json={"organization_ids": [org]},
            )
        await _drained(infra)
        deadline = time.monotonic() + 180
        after = before
        while any(after[topic] >= before[topic] for topic in COMPACTED):
            assert time.monotonic() < deadline, f"no compaction: {after} records of {before}"
            await asyncio.sleep(3)
            after = {topic: await _records(infra, topic) for topic in COMPACTED}
    finally:
        for topic in COMPACTED:
            await _configure(infra, topic, {})
    return {topic: (before[topic], after[topic]) for topic in COMPACTED}


def _rebuild(service_env: dict[str, str], database_url: str, *what: str) -> None:
    rebuilt = subprocess.run(
        [str(VENV_BIN / "clientele"), "rebuild", *what],
        env={**service_env, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
        text=True,
    )
    assert "swapped in" in rebuilt.stdout, rebuilt.stdout + rebuilt.stderr


@pytest.mark.timeout(1800 + COUNT // 5)  # minutes on two shared cores
def test_a_fresh_read_model_equals_the_directory_before_and_after_compaction(
    infra: Infrastructure,
    start_service: Any,
    service_env: dict[str, str],
    issuer: TokenIssuer,
) -> None:
    directory_process: ServiceProcess = start_service("directory")
    run = uuid.uuid4().hex[:8]
    direction = f"state-{run}"
    started = time.monotonic()
    directory = asyncio.run(
        _populate(
            directory_process.url, infra.test_database_url("directory"), issuer, direction, COUNT
        )
    )
    expected = asyncio.run(_directory_state(infra, direction))
    assert len(expected) == COUNT
    assert sum(row[6] for row in expected.values()) >= 4  # blocked
    assert sum(row[8] is not None for row in expected.values()) >= 1  # merged
    lists = asyncio.run(_directory_lists(infra, direction))
    assert len(lists[0]) == 4
    assert len(lists[1]) > COUNT // 2  # every one of the import but the merged, and some
    populated = time.monotonic() - started

    register = asyncio.run(_register(infra, directory.entries))
    assert len(register) == 5
    assert sum(values[3] for values in register.values()) == 4  # one removed
    assert asyncio.run(_register_from_topic(infra, directory.entries)) == register

    names = [f"clientele_test_state_{run}_{n}" for n in range(4)]
    try:
        first = (
            _fresh_database(infra, service_env, names[0], "interactions"),
            _fresh_database(infra, service_env, names[1], "campaigns"),
        )
        found = asyncio.run(_follow(infra, first, direction, (expected, lists), f"st-{run}-a"))
        assert found[0] == expected
        assert found[1] == lists
        followed = time.monotonic() - started - populated

        live = next(o for o in directory.versions if not expected[uuid.UUID(o)][7])
        every = next(i for i, values in lists[0].items() if values[0] == "every one")
        counts = asyncio.run(_compact(infra, directory_process.url, directory, live, str(every)))
        assert all(after < before for before, after in counts.values()), counts
        expected = asyncio.run(_directory_state(infra, direction))
        lists = asyncio.run(_directory_lists(infra, direction))
        assert (every, uuid.UUID(live)) not in lists[1]

        second = (
            _fresh_database(infra, service_env, names[2], "interactions"),
            _fresh_database(infra, service_env, names[3], "campaigns"),
        )
        found = asyncio.run(_follow(infra, second, direction, (expected, lists), f"st-{run}-b"))
        assert found[0] == expected
        assert found[1] == lists

        _rebuild(service_env, first[0], "interactions", "organizations")
        assert asyncio.run(_cards(first[0], direction)) == expected
        _rebuild(service_env, first[1], "campaigns", "lists")
        _rebuild(service_env, first[1], "campaigns", "list-members")
        assert asyncio.run(_campaigns_lists(first[1], direction)) == lists
        print(  # the figures of a run with many organizations (ADR 18)
            f"\n{COUNT} organizations: populated in {populated:.0f} s, a fresh consumer "
            f"followed in {followed:.0f} s, all in {time.monotonic() - started:.0f} s"
        )
    finally:
        for name in names:
            asyncio.run(drop_database(infra.postgres_url, name))


FOLLOWED = (
    ("interactions", "changes", ORGANIZATIONS),
    ("interactions", "states", ORGANIZATIONS_STATE),
    ("campaigns", "lists", LISTS_STATE),
    ("campaigns", "members", LIST_MEMBERS_STATE),
)
"""The consumer groups ``_follow`` runs (``<service>.<groups>-<name>``) and their topics."""


async def _ends(infra: Infrastructure) -> int:
    """The sum of the end offsets of the topics ``_follow`` follows."""
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap_servers)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, n)
            for _, _, topic in FOLLOWED
            for n in range(REGISTRY.topic(topic).partitions)
        ]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def _caught_up(infra: Infrastructure, groups: str) -> bool:
    """Whether every consumer group of ``_follow`` committed the end of its topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=infra.kafka_bootstrap_servers)
    await admin.start()
    committed = 0
    try:
        for service, name, _ in FOLLOWED:
            offsets = await admin.list_consumer_group_offsets(f"{service}.{groups}-{name}")
            committed += sum(max(found.offset, 0) for found in offsets.values())
    finally:
        await admin.close()
    return committed >= await _ends(infra)


async def _applied(databases: tuple[str, str]) -> int:
    """How many events the consumers applied (their inbox rows)."""
    total = 0
    for url in databases:
        conn = await asyncpg.connect(url)
        try:
            total += int(await conn.fetchval("SELECT count(*) FROM inbox"))
        finally:
            await conn.close()
    return total


def _republish(service_env: dict[str, str], entity: str, rate: float) -> tuple[int, float]:
    """Run ``clientele republish directory <entity>``; how many it staged, in how long."""
    started = time.monotonic()
    done = subprocess.run(
        [str(VENV_BIN / "clientele"), "republish", "directory", entity, "--rate", str(rate)],
        env=service_env,
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.monotonic() - started
    last = done.stdout.strip().splitlines()[-1]
    assert last.endswith("state records staged"), done.stdout + done.stderr
    return int(last.split(": ")[1].split()[0]), seconds


@pytest.mark.timeout(1200)
def test_republishing_twice_changes_no_read_model_and_applies_each_record_once(
    infra: Infrastructure,
    start_service: Any,
    service_env: dict[str, str],
    issuer: TokenIssuer,
) -> None:
    """``clientele republish`` (ADR 18): the owner stages the state record of every row again,
    at a bounded rate; a consumer applies each record once and ends with the same read model."""
    directory_process: ServiceProcess = start_service("directory")
    run = uuid.uuid4().hex[:8]
    direction = f"republish-{run}"
    asyncio.run(
        _populate(
            directory_process.url, infra.test_database_url("directory"), issuer, direction, 80
        )
    )
    expected = (
        asyncio.run(_directory_state(infra, direction)),
        asyncio.run(_directory_lists(infra, direction)),
    )
    names = [f"clientele_test_republish_{run}_{n}" for n in range(2)]
    env = {**service_env, "DATABASE_URL": infra.test_database_url("directory")}
    try:
        databases = (
            _fresh_database(infra, service_env, names[0], "interactions"),
            _fresh_database(infra, service_env, names[1], "campaigns"),
        )
        groups = f"rp-{run}"

        async def caught_up() -> bool:
            return await _caught_up(infra, groups)

        found = asyncio.run(_follow(infra, databases, direction, expected, groups, caught_up))
        assert found == expected
        assert asyncio.run(caught_up())
        for _ in range(2):
            applied, ends = asyncio.run(_applied(databases)), asyncio.run(_ends(infra))
            for entity in ("organizations", "list-members"):
                _republish(env, entity, 5000.0)
            lists, seconds = _republish(env, "lists", 2.0)
            assert lists >= 4
            assert seconds >= lists / 2.0  # no faster than the rate asked
            found = asyncio.run(_follow(infra, databases, direction, expected, groups, caught_up))
            assert found == expected
            # every record republished was applied, once, and nothing else was
            published = asyncio.run(_ends(infra)) - ends
            assert published > 0
            assert asyncio.run(_applied(databases)) - applied == published
    finally:
        for name in names:
            asyncio.run(drop_database(infra.postgres_url, name))
