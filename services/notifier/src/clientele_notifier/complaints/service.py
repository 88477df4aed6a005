"""A complaint about a sent e-mail: recorded once on the delivery's log and published for its
requester (``notifier.delivery.complained``)."""

from __future__ import annotations

import asyncio
import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.events.schemas.notifications import Channel
from clientele_shared.http.problems import Conflict, invalid_field
from clientele_shared.runtime import ServiceRuntime

from clientele_notifier import publishing
from clientele_notifier.complaints import queries
from clientele_notifier.complaints.rules import ReportInvalid, complained_delivery
from clientele_notifier.deliveries.rules import DeliveryState
from clientele_notifier.deliveries.service import work
from clientele_notifier.settings import NotifierSettings

SENT_STATES = (DeliveryState.SENT.value, DeliveryState.DIGESTED.value)


async def report(
    *, runtime: ServiceRuntime, principal: Principal, data: bytes
) -> tuple[uuid.UUID, bool]:
    """The delivery the feedback report names, and whether this report was its first (a
    repeated one changes nothing). 422 for no report of ours; 409 for an unsent delivery."""
    settings = runtime.settings
    assert isinstance(settings, NotifierSettings)
    try:
        delivery_id = await asyncio.to_thread(complained_delivery, data, settings.message_id_domain)
    except ReportInvalid as exc:
        raise invalid_field("report", str(exc), "not_a_complaint") from None
    async with work(runtime, principal) as uow:
        row = await queries.locked_delivery(uow.session, delivery_id)
        if row is None or row.channel != Channel.EMAIL.value:
            raise invalid_field("report", "no e-mail of ours has that Message-ID", "unknown")
        if row.state not in SENT_STATES:
            raise Conflict(f"The delivery is {row.state}, not sent.")
        if await queries.complained(uow.session, delivery_id):
            return delivery_id, False
        await queries.record(uow.session, delivery_id, row.attempts)
        uow.stage(
            publishing.complaint_event(
                uow.outbox,
                delivery_id=delivery_id,
                request_id=row.request_id,
                requester=row.requester,
                idempotency_key=row.idempotency_key,
                kind=row.kind,
                recipient=row.recipient,
                attempts=row.attempts,
            )
        )
    return delivery_id, True
