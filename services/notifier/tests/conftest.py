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
from clientele_shared.events.catalog import REGISTRY, notification_requests
from clientele_shared.events.envelope import Envelope
from clientele_shared.testing.infra import Infrastructure
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


@pytest.fixture
def publish(infra: Infrastructure) -> Iterator[Publish]:
    """Publish one event as ``service`` on its notifications topic (the wire format of the
    outbox relay), and wait for Kafka's acknowledgement."""
    loop = asyncio.new_event_loop()

    async def started() -> AIOKafkaProducer:
        producer = AIOKafkaProducer(bootstrap_servers=infra.kafka_bootstrap_servers, acks="all")
        await producer.start()
        return producer

    producer = loop.run_until_complete(started())

    def send(service: str, event_type: str, payload: dict[str, Any], **envelope: Any) -> Envelope:
        spec = REGISTRY.spec(event_type, 1)
        spec.payload.model_validate(payload)
        event = Envelope(
            type=event_type,
            schema_version=1,
            producer=service,
            correlation_id=str(uuid.uuid4()),
            aggregate_id=envelope.pop("aggregate_id", str(uuid.uuid4())),
            payload=payload,
            **envelope,
        )
        loop.run_until_complete(
            producer.send_and_wait(
                notification_requests(service),
                value=event.to_bytes(),
                key=event.aggregate_id.encode(),
            )
        )
        return event

    yield send
    loop.run_until_complete(producer.stop())
    loop.close()
