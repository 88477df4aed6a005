"""Notifier test fixtures: real SMTP and webhook receivers, a notifier process wired to them,
and a way to publish request events on Kafka as the requesting service would."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.envelope import Envelope
from clientele_testkit.infra import Infrastructure
from notifier_testkit import WEBHOOK_SECRET, Publish, SmtpServer, WebhookReceiver


@pytest.fixture(scope="session")
def migrated(infra: Infrastructure, service_env: dict[str, str]) -> None:
    """Only the notifier's test database (the root fixture migrates every service)."""
    subprocess.run(
        [str(Path(sys.executable).parent / "clientele"), "migrate", "notifier"],
        env={**service_env, "DATABASE_URL": infra.test_database_url("notifier")},
        check=True,
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(WEBHOOK_SECRET) as server:
        yield server


class Publisher:
    """Publishes events as a requesting service on their topic (the wire format of the outbox
    relay) and waits for Kafka's acknowledgement."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.producer = self.loop.run_until_complete(self._started(bootstrap_servers))

    @staticmethod
    async def _started(bootstrap_servers: str) -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5)
        await producer.start()
        return producer

    def __call__(
        self, service: str, event_type: str, payload: dict[str, Any], **envelope: Any
    ) -> Envelope:
        event = self._envelope(service, event_type, payload, **envelope)
        self.loop.run_until_complete(self._send([event]))
        return event

    def many(self, service: str, events: list[tuple[str, dict[str, Any], str]]) -> None:
        """Publish (event type, payload, aggregate id) triples in one go."""
        self.loop.run_until_complete(
            self._send(
                [
                    self._envelope(service, event_type, payload, aggregate_id=aggregate_id)
                    for event_type, payload, aggregate_id in events
                ]
            )
        )

    @staticmethod
    def _envelope(
        service: str, event_type: str, payload: dict[str, Any], **envelope: Any
    ) -> Envelope:
        REGISTRY.spec(event_type, 1).payload.model_validate(payload)
        return Envelope(
            type=event_type,
            schema_version=1,
            producer=service,
            correlation_id=str(uuid.uuid4()),
            aggregate_id=envelope.pop("aggregate_id", str(uuid.uuid4())),
            payload=payload,
            **envelope,
        )

    async def _send(self, events: list[Envelope]) -> None:
        sent = [
            await self.producer.send(
                REGISTRY.spec(event.type, 1).topic,
                value=event.to_bytes(),
                key=event.aggregate_id.encode(),
            )
            for event in events
        ]
        await asyncio.gather(*sent)

    def close(self) -> None:
        self.loop.run_until_complete(self.producer.stop())
        self.loop.close()


@pytest.fixture
def publish(infra: Infrastructure) -> Iterator[Publish]:
    publisher = Publisher(infra.kafka_bootstrap_servers)
    yield publisher
    publisher.close()
