"""A service under test as a process and what its tests need to drive it: tokens, directory
events on Kafka, its database, waiting for read models and reading the events it published."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import async_url
from clientele_shared.events.catalog import (
    EMPLOYEES,
    LIST_MEMBERS_STATE,
    ORGANIZATIONS,
    PERSONS,
    REGISTRY,
)
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.inbox import tombstone_event_id
from clientele_shared.events.schemas.directory import (
    EmployeeCreated,
    ListMemberState,
    OrganizationCreated,
    OrganizationListState,
    PersonCreated,
)
from clientele_shared.events.state import Tombstone
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess, wait_for

VENV_BIN = Path(sys.executable).parent

TOPIC_OF = {"organization": ORGANIZATIONS, "person": PERSONS, "employee": EMPLOYEES}


def bearer(
    issuer: TokenIssuer,
    subject: str,
    roles: Sequence[str] = ("sales",),
    directions: Sequence[str] = (),
) -> dict[str, str]:
    token = issuer.mint(subject, roles=list(roles), directions=list(directions), ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


def directory_envelope(
    event_type: str, payload: BaseModel, aggregate_id: uuid.UUID | str
) -> Envelope:
    spec = REGISTRY.spec_for(event_type, payload)
    return Envelope(
        type=event_type,
        schema_version=spec.version,
        producer="directory",
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="test", kind="user"),
        aggregate_id=str(aggregate_id),
        payload=payload.model_dump(mode="json"),
    )


async def send_envelopes(bootstrap: str, topic: str, envelopes: Sequence[Envelope]) -> None:
    """Publish envelopes keyed by their aggregate, acknowledged by every replica."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                topic, envelope.to_bytes(), key=envelope.aggregate_id.encode()
            )
    finally:
        await producer.stop()


async def collect_envelopes(
    bootstrap: str, topic: str, keys: set[str], wanted: int, timeout_ms: int
) -> list[Envelope]:
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"test-reader-{uuid.uuid4()}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    found: list[Envelope] = []
    try:
        while len(found) < wanted:
            batch = await consumer.getmany(timeout_ms=timeout_ms)
            if not batch:
                break
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.key.decode() in keys:
                        found.append(Envelope.from_bytes(record.value or b""))
    finally:
        await consumer.stop()
    return found


@dataclass
class Stack:
    """A service under test and what tests need to drive it."""

    url: str
    bootstrap: str
    issuer: TokenIssuer
    database_url: str

    def user(
        self, directions: Sequence[str], roles: Sequence[str] = ("sales",), subject: str = "alice"
    ) -> dict[str, str]:
        return bearer(self.issuer, subject, roles, directions)

    def call(
        self,
        method: str,
        path: str,
        headers: dict[str, str],
        *,
        if_match: int | str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if if_match is not None:
            tag = f'W/"{if_match}"' if isinstance(if_match, int) else if_match
            headers = {**headers, "If-Match": tag}
        return httpx.request(method, self.url + path, headers=headers, timeout=30, **kwargs)

    def publish(
        self, kind: str, event_type: str, payload: BaseModel, aggregate_id: uuid.UUID
    ) -> None:
        """Publish as the directory would (its relay is not needed to test a consumer)."""
        envelope = directory_envelope(event_type, payload, aggregate_id)
        asyncio.run(send_envelopes(self.bootstrap, TOPIC_OF[kind], [envelope]))

    def publish_state(self, event_type: str, payload: BaseModel, key: str) -> None:
        """Publish a state record as the directory would, on its state topic under ``key``."""
        topic = REGISTRY.spec_for(event_type, payload).topic
        asyncio.run(
            send_envelopes(self.bootstrap, topic, [directory_envelope(event_type, payload, key)])
        )

    def static_list(
        self,
        list_id: uuid.UUID,
        added: Sequence[uuid.UUID] = (),
        removed: Sequence[uuid.UUID] = (),
        *,
        name: str = "Список",
        directions: Sequence[str] = (),
    ) -> list[uuid.UUID]:
        """The directory's state records of a static list's change: the list, a record per
        member added, a tombstone per member removed (ADR 18); the tombstones' event ids."""
        revision = time.time_ns()  # later calls, later records
        state = OrganizationListState(
            list_id=list_id,
            version=1,
            revision=revision,
            name=name,
            kind="static",
            directions=list(directions),
        )
        self.publish_state("directory.list.state", state, str(list_id))
        for offset, org in enumerate(added, start=1):
            member = ListMemberState(
                list_id=list_id, organization_id=org, revision=revision + offset
            )
            self.publish_state("directory.list_member.state", member, f"{list_id}:{org}")
        return [
            self.remove_state(LIST_MEMBERS_STATE, f"{list_id}:{org}", (1, revision + offset))
            for offset, org in enumerate(removed, start=len(added) + 1)
        ]

    def remove_state(self, topic: str, key: str, order: tuple[int, int]) -> uuid.UUID:
        """Publish a tombstone on ``key`` of a state topic with its order (ADR 18); the event id
        a consumer's inbox records it under."""

        async def send() -> uuid.UUID:
            producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
            await producer.start()
            try:
                headers = Tombstone(topic, key, *order).headers()
                sent = await producer.send_and_wait(
                    topic,
                    None,
                    key=key.encode(),
                    headers=[(name, value.encode()) for name, value in headers.items()],
                )
            finally:
                await producer.stop()
            return tombstone_event_id(topic, sent.partition, sent.offset)

        return asyncio.run(send())

    def send(self, topic: str, envelopes: Sequence[Envelope]) -> None:
        """Publish envelopes as they are (a redelivery)."""
        asyncio.run(send_envelopes(self.bootstrap, topic, envelopes))

    def scalar(self, sql: str, **params: Any) -> Any:
        async def run() -> Any:
            engine = create_async_engine(async_url(self.database_url))
            try:
                async with engine.connect() as conn:
                    return (await conn.execute(text(sql), params)).scalar()
            finally:
                await engine.dispose()

        return asyncio.run(run())

    def execute(self, sql: str, **params: Any) -> None:
        """Run a statement in the service's database and commit it (test set-up only)."""

        async def run() -> None:
            engine = create_async_engine(async_url(self.database_url))
            try:
                async with engine.begin() as conn:
                    await conn.execute(text(sql), params)
            finally:
                await engine.dispose()

        asyncio.run(run())

    def wait_until(self, sql: str, expected: Any, what: str, **params: Any) -> None:
        wait_for(lambda: self.scalar(sql, **params) == expected, 30, what)

    def organization(
        self, directions: Sequence[str], *, blocked: bool = False, name: str = "ООО «Ромашка»"
    ) -> uuid.UUID:
        """An organization the directory announced, once the service's read model has it."""
        org_id = uuid.uuid4()
        payload = OrganizationCreated(
            organization_id=org_id,
            legal_name=name,
            inn=None,
            status="active",
            directions=list(directions),
            blocked=blocked,
        )
        self.publish("organization", "directory.organization.created", payload, org_id)
        self.wait_until(
            "SELECT count(*) FROM organizations WHERE organization_id = :id",
            1,
            "the organization in the read model",
            id=org_id,
        )
        return org_id

    def person(self, directions: Sequence[str]) -> uuid.UUID:
        person_id = uuid.uuid4()
        payload = PersonCreated(
            person_id=person_id, last_name="Иванов", first_name="Иван", directions=list(directions)
        )
        self.publish("person", "directory.person.created", payload, person_id)
        self.wait_until(
            "SELECT count(*) FROM persons WHERE person_id = :id", 1, "the person", id=person_id
        )
        return person_id

    def employee(self, directions: Sequence[str], *, active: bool = True) -> uuid.UUID:
        employee_id = uuid.uuid4()
        payload = EmployeeCreated(
            employee_id=employee_id,
            email=f"{employee_id.hex[:8]}@ourco.example",
            name="Пётр Петров",
            roles=["sales"],
            directions=list(directions),
            active=active,
        )
        self.publish("employee", "directory.employee.created", payload, employee_id)
        self.wait_until(
            "SELECT count(*) FROM employees WHERE employee_id = :id",
            1,
            "the employee",
            id=employee_id,
        )
        return employee_id

    def events(
        self, topic: str, keys: set[str], wanted: int, timeout_ms: int = 10_000
    ) -> list[Envelope]:
        """Read a topic from its start until ``wanted`` events keyed by ``keys`` were seen."""
        return asyncio.run(collect_envelopes(self.bootstrap, topic, keys, wanted, timeout_ms))


def migrate(service: str, infra: Infrastructure, service_env: dict[str, str]) -> str:
    """Migrate a service's test database; its URL."""
    url = infra.test_database_url(service)
    subprocess.run(
        [str(VENV_BIN / "clientele"), "migrate", service],
        env={**service_env, "DATABASE_URL": url},
        check=True,
    )
    return url


@contextmanager
def running(
    service: str,
    infra: Infrastructure,
    service_env: dict[str, str],
    database_url: str,
    issuer: TokenIssuer,
    logs: Path,
) -> Iterator[Stack]:
    """The service as a process on its migrated database, until the block ends."""
    process = ServiceProcess(service, {**service_env, "DATABASE_URL": database_url}, logs, VENV_BIN)
    try:
        wait_for(process.ready, 60, f"{service} to be ready")
        yield Stack(
            url=process.url,
            bootstrap=infra.kafka_bootstrap_servers,
            issuer=issuer,
            database_url=database_url,
        )
    finally:
        process.stop()
