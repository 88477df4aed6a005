"""The notifier's business operations through their service functions against real PostgreSQL
(no HTTP, no worker, no Kafka: the outbox rows are what would be published)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from clientele_notifier.deliveries import service as deliveries
from clientele_notifier.deliveries.rules import DeliveryState
from clientele_notifier.inbox import service as inbox
from clientele_notifier.preferences import service as preferences
from clientele_notifier.preferences.rules import Preferences
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.tables import metadata, outbox
from clientele_shared.auth.principal import Principal
from clientele_shared.events.catalog import DELIVERIES
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    Recipient,
)
from clientele_shared.events.schemas.notifier import DELIVERY_FAILED, DELIVERY_SUCCEEDED
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_testkit.infra import Infrastructure
from pydantic import SecretStr
from sqlalchemy import select

pytestmark = pytest.mark.integration

REQUESTER = "interactions"


@pytest.fixture
async def runtime(infra: Infrastructure, migrated: None) -> AsyncIterator[ServiceRuntime]:
    """The notifier's runtime, not started: its sessions and outbox are all these use."""
    settings = NotifierSettings(
        database_url=SecretStr(infra.test_database_url("notifier")),
        kafka_bootstrap_servers=infra.kafka_bootstrap_servers,
        redis_url=SecretStr(infra.redis_url),
    )
    runtime = ServiceRuntime(settings, metadata, publishes=[DELIVERIES])
    try:
        yield runtime
    finally:
        await runtime.producer.stop()  # never started: this only closes it
        await runtime.redis.aclose()
        await runtime.engine.dispose()


def _employee(subject: str) -> Principal:
    return Principal(subject=subject, roles=frozenset({"sales"}))


def _request(channel: Channel, employee: str, kind: str = "deal.won") -> NotificationRequested:
    return NotificationRequested(
        idempotency_key=f"k-{uuid.uuid4()}",
        channel=channel,
        kind=kind,
        recipients=[Recipient(employee_id=employee)],
        subject="Сделка выиграна",
        text="ООО «Ромашка»",
    )


async def _accept(runtime: ServiceRuntime, request: NotificationRequested) -> uuid.UUID | None:
    async with deliveries.work(runtime) as uow:
        accepted = await deliveries.accept_request(
            uow, requester=REQUESTER, request=request, event_id=None, now=dt.datetime.now(dt.UTC)
        )
    return accepted.request_ids[0]


async def _events_about(runtime: ServiceRuntime, request_id: uuid.UUID) -> list[str]:
    async with runtime.sessions() as session:
        found = await session.scalars(
            select(outbox.c.event_type).where(outbox.c.key == str(request_id)).order_by(outbox.c.id)
        )
        return list(found.all())


async def test_an_inapp_request_is_delivered_once_with_its_result_event(
    runtime: ServiceRuntime,
) -> None:
    employee = f"emp-{uuid.uuid4()}"
    request = _request(Channel.INAPP, employee)
    request_id = await _accept(runtime, request)
    assert request_id is not None
    assert await _accept(runtime, request) is None  # the same idempotency key: nothing new

    (notification,) = await inbox.my_inbox(
        runtime=runtime, principal=_employee(employee), unread=False, limit=10
    )
    assert (notification.title, notification.body) == ("Сделка выиграна", "ООО «Ромашка»")
    assert await _events_about(runtime, request_id) == [DELIVERY_SUCCEEDED]
    (delivery,) = await deliveries.list_deliveries(
        runtime=runtime,
        principal=_employee("admin"),
        requester=REQUESTER,
        idempotency_key=request.idempotency_key,
        request_id=None,
        state=None,
        limit=10,
    )
    assert delivery.state is DeliveryState.SENT

    with pytest.raises(NotFound):  # nobody marks another's notification read
        await inbox.mark_read(
            runtime=runtime, principal=_employee("someone-else"), notification_id=notification.id
        )
    read = await inbox.mark_read(
        runtime=runtime, principal=_employee(employee), notification_id=notification.id
    )
    assert read.read_at is not None
    assert await inbox.unread_count(runtime=runtime, principal=_employee(employee)) == 0


async def test_preferences_suppress_a_channel_and_say_so_to_the_requester(
    runtime: ServiceRuntime,
) -> None:
    employee = f"emp-{uuid.uuid4()}"
    await preferences.set_my_preferences(
        runtime=runtime,
        principal=_employee(employee),
        prefs=Preferences(channels={"deal.won": [Channel.INAPP]}),
    )
    request_id = await _accept(runtime, _request(Channel.EMAIL, employee))
    assert request_id is not None
    (delivery,) = await deliveries.list_deliveries(
        runtime=runtime,
        principal=_employee("admin"),
        requester=None,
        idempotency_key=None,
        request_id=request_id,
        state=None,
        limit=10,
    )
    assert delivery.state is DeliveryState.SUPPRESSED
    assert await _events_about(runtime, request_id) == [DELIVERY_FAILED]


async def test_a_claimed_email_that_fails_for_good_is_dead_lettered_and_not_replayed(
    runtime: ServiceRuntime,
) -> None:
    request_id = await _accept(runtime, _request(Channel.EMAIL, f"emp-{uuid.uuid4()}"))
    assert request_id is not None
    claimed: list[Any] = []
    while not any(row.request_id == request_id for row in claimed):  # others' may be due too
        claimed = await deliveries.claim_due(
            runtime=runtime, batch=500, lease_seconds=60, channels=[Channel.EMAIL]
        )
        assert claimed, "the new delivery was never claimed"
    row = next(row for row in claimed if row.request_id == request_id)
    assert await deliveries.finish(
        runtime=runtime, row=row, state=DeliveryState.DEAD, detail="550 no such user", duration_ms=1
    )
    assert not await deliveries.finish(  # the claim is spent: a second outcome is refused
        runtime=runtime, row=row, state=DeliveryState.SENT, detail="250", duration_ms=1
    )
    admin = Principal(subject="admin", roles=frozenset({"admin"}))
    dead = await deliveries.get_delivery(runtime=runtime, principal=admin, delivery_id=row.id)
    assert (dead.state, dead.dead_letter_reason) == (DeliveryState.DEAD, "550 no such user")
    assert [entry.outcome for entry in dead.log] == ["dead"]
    assert await _events_about(runtime, request_id) == [DELIVERY_FAILED]
    with pytest.raises(Conflict):  # only webhook deliveries are replayed
        await deliveries.replay_delivery(runtime=runtime, principal=admin, delivery_id=row.id)
