"""Helpers for the directory's integration tests: tokens, fresh directions, reading Kafka."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.state import Removal
from stdnum.ru import inn as ru_inn

VALID_INN = "7707083893"
VALID_KPP = "773601001"
VALID_OGRN = "1027700132195"
OTHER_INN = "500100732259"  # a sole trader's 12-digit INN


def fresh_inn() -> str:
    """A valid 10-digit INN nobody else uses (the register is shared by every test)."""
    body = f"77{random.randrange(10**7):07d}"
    return body + str(ru_inn.calc_company_check_digit(body))


def fresh_domain() -> str:
    return f"x{uuid.uuid4().hex[:10]}.example"


def fresh_direction() -> str:
    """A direction no other test (or engineer sharing the database) uses."""
    return f"d{uuid.uuid4().hex[:12]}"


def bearer(issuer: TokenIssuer, subject: str | None = None, **claims: Any) -> dict[str, str]:
    token = issuer.mint(subject or f"user-{uuid.uuid4().hex[:8]}", **claims)
    return {"Authorization": f"Bearer {token}"}


def sales(issuer: TokenIssuer, *directions: str, subject: str | None = None) -> dict[str, str]:
    return bearer(issuer, subject, roles=["sales"], directions=list(directions))


def admin(issuer: TokenIssuer, subject: str = "root") -> dict[str, str]:
    return bearer(issuer, subject, roles=["admin"])


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


class TopicTail:
    """Reads a topic from its end as of :meth:`start` (records written before are ignored)."""

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            group_id=None,
            auto_offset_reset="latest",
        )
        self.seen: list[Envelope] = []
        self.removed: list[Removal] = []

    async def start(self) -> TopicTail:
        await self.consumer.start()
        deadline = time.monotonic() + 30
        while not self.consumer.assignment():
            if time.monotonic() > deadline:
                raise AssertionError(f"no partitions of {self.topic} were assigned")
            await asyncio.sleep(0.1)
        for partition in self.consumer.assignment():  # resolve "latest" now, before writes
            await self.consumer.position(partition)
        return self

    async def stop(self) -> None:
        await self.consumer.stop()

    async def _fetch(self) -> None:
        """Keep every record of a batch (a test may look for several events of one batch)."""
        batch = await self.consumer.getmany(timeout_ms=500)
        for records in batch.values():
            for record in records:
                if record.value is None:  # a tombstone (a state topic)
                    self.removed.append(Removal.of(record.key, record.headers))
                else:
                    self.seen.append(Envelope.from_bytes(record.value))

    async def wait_for(
        self, predicate: Callable[[Envelope], bool], *, within: float = 30
    ) -> Envelope:
        """The first event (seen before or arriving now) that satisfies ``predicate``."""
        deadline = time.monotonic() + within
        checked = 0
        while True:
            for envelope in self.seen[checked:]:
                if predicate(envelope):
                    return envelope
            checked = len(self.seen)
            if time.monotonic() > deadline:
                break
            await self._fetch()
        raise AssertionError(
            f"no matching event on {self.topic} within {within}s; seen: "
            + ", ".join(f"{e.type}@{e.aggregate_id}" for e in self.seen[-20:])
        )

    async def removal_of(self, key: str, within: float = 30) -> Removal:
        """The first tombstone on ``key``."""
        deadline = time.monotonic() + within
        while True:
            for removal in self.removed:
                if removal.key == key:
                    return removal
            if time.monotonic() > deadline:
                raise AssertionError(f"no tombstone on {key} in {self.topic} within {within}s")
            await self._fetch()

    async def events_of(self, aggregate_id: str, count: int, within: float = 30) -> list[Envelope]:
        """The first ``count`` events of one aggregate, in the order Kafka delivered them."""
        deadline = time.monotonic() + within
        while True:
            found = [e for e in self.seen if e.aggregate_id == aggregate_id]
            if len(found) >= count:
                return found[:count]
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(found)} of {count} events of {aggregate_id} arrived")
            await self._fetch()


FINISHED_IMPORTS = {"succeeded", "rejected", "failed", "cancelled"}


IMPORT_SECONDS = 600


async def wait_for_import(
    client: httpx.AsyncClient, headers: dict[str, str], location: str
) -> dict[str, Any]:
    """Poll an import job until it ends (IMPORT_SECONDS at most); the job."""
    deadline = time.monotonic() + IMPORT_SECONDS
    while True:
        response = await client.get(location, headers=headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["state"] in FINISHED_IMPORTS:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"the import did not end: {job}")
        await asyncio.sleep(0.2)


async def import_report(
    client: httpx.AsyncClient, headers: dict[str, str], location: str
) -> list[dict[str, Any]]:
    """Every line of an import's report, page after page (errors first)."""
    lines: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        params = {"limit": "1000", **({"after": after} if after else {})}
        page = await client.get(f"{location}/report", params=params, headers=headers)
        assert page.status_code == 200, page.text
        lines.extend(page.json()["items"])
        after = page.json()["next_cursor"]
        if after is None:
            return lines


async def run_import(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    files: dict[str, Any],
    data: dict[str, str],
    what: str = "organizations",
) -> httpx.Response:
    """Queue an import, wait for its job, and answer as the synchronous import did: 200 with
    the counts and the report lines in row order, or the job's problem (with the counts and
    the report of a rejected run). A refusal before the job (422, 403) is returned as it is.
    ``what``: organizations or persons."""
    queued = await client.post(f"/v1/{what}/import", files=files, data=data, headers=headers)
    if queued.status_code != 202:
        return queued
    location = queued.headers["Location"]
    assert location == f"/v1/{what}/imports/{queued.json()['id']}"
    job = await wait_for_import(client, headers, location)
    lines = sorted(await import_report(client, headers, location), key=lambda line: line["row"])
    body = {"mode": job["mode"], **job["counts"], "report": lines}
    if job["state"] == "succeeded":
        return httpx.Response(200, json=body)
    assert job["problem"] is not None, job
    return httpx.Response(
        job["problem"]["status"],
        json={**body, **job["problem"], "state": job["state"]},
        headers={"content-type": "application/problem+json"},
    )
