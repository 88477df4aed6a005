"""Events out: the result of each delivery for its requester, and each fired reminder."""

from __future__ import annotations

import datetime as dt
import uuid

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.notifications import Channel
from clientele_shared.events.schemas.notifier import (
    DELIVERY_BOUNCED,
    DELIVERY_COMPLAINED,
    DELIVERY_FAILED,
    DELIVERY_SUCCEEDED,
    REMINDER_FIRED,
    DeliveryResult,
    ReminderFired,
)

from clientele_notifier.deliveries.rules import DeliveryState

RESULT_EVENT = {
    DeliveryState.SENT: DELIVERY_SUCCEEDED,
    DeliveryState.DIGESTED: DELIVERY_SUCCEEDED,
    DeliveryState.BOUNCED: DELIVERY_BOUNCED,
    DeliveryState.DEAD: DELIVERY_FAILED,
    DeliveryState.SUPPRESSED: DELIVERY_FAILED,
}


def result_events(
    outbox: Outbox,
    state: DeliveryState,
    *,
    delivery_id: uuid.UUID,
    request_id: uuid.UUID,
    requester: str,
    idempotency_key: str,
    kind: str,
    channel: Channel,
    recipient: str,
    attempts: int,
    reason: str | None,
) -> list[Envelope]:
    """The result event for the requester of a delivery that reached ``state`` (none while it
    is still under way)."""
    event_type = RESULT_EVENT.get(state)
    if event_type is None:
        return []
    return [
        outbox.envelope(
            event_type,
            DeliveryResult(
                delivery_id=delivery_id,
                request_id=request_id,
                requester=requester,
                idempotency_key=idempotency_key,
                kind=kind,
                channel=channel,
                recipient=recipient,
                attempts=attempts,
                reason=reason,
            ),
            aggregate_id=str(request_id),
        )
    ]


def reminder_fired(
    outbox: Outbox,
    *,
    reminder_id: uuid.UUID,
    requester: str,
    recipient: str,
    due_at: dt.datetime,
    fired_at: dt.datetime,
) -> Envelope:
    return outbox.envelope(
        REMINDER_FIRED,
        ReminderFired(
            reminder_id=reminder_id,
            requester=requester,
            recipient=recipient,
            due_at=due_at,
            fired_at=fired_at,
        ),
        aggregate_id=str(reminder_id),
    )


def complaint_event(
    outbox: Outbox,
    *,
    delivery_id: uuid.UUID,
    request_id: uuid.UUID,
    requester: str,
    idempotency_key: str,
    kind: str,
    recipient: str,
    attempts: int,
) -> Envelope:
    """A sent e-mail its recipient reported as spam, for its requester."""
    return outbox.envelope(
        DELIVERY_COMPLAINED,
        DeliveryResult(
            delivery_id=delivery_id,
            request_id=request_id,
            requester=requester,
            idempotency_key=idempotency_key,
            kind=kind,
            channel=Channel.EMAIL,
            recipient=recipient,
            attempts=attempts,
            reason="complaint",
        ),
        aggregate_id=str(request_id),
    )
