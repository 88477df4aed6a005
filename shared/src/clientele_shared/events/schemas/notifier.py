"""Events the notifier publishes: delivery results back to the requesting service."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, Field

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.schemas.notifications import Channel
from clientele_shared.events.topics import DELIVERIES


class DeliveryResult(Payload):
    """The outcome of one delivery (one recipient of one request); ``requester`` filters."""

    delivery_id: uuid.UUID
    request_id: uuid.UUID
    requester: str
    idempotency_key: str
    kind: str
    channel: Channel
    recipient: str
    attempts: int = Field(ge=0)
    reason: str | None = None


class ReminderFired(Payload):
    """A reminder fired (once) and its delivery was created."""

    reminder_id: uuid.UUID
    requester: str
    recipient: str
    due_at: AwareDatetime
    fired_at: AwareDatetime


DELIVERY_SUCCEEDED = "notifier.delivery.succeeded"
DELIVERY_FAILED = "notifier.delivery.failed"
DELIVERY_BOUNCED = "notifier.delivery.bounced"
DELIVERY_COMPLAINED = "notifier.delivery.complained"
"""The recipient of a sent e-mail reported it as spam (a feedback-loop report, RFC 5965)."""
REMINDER_FIRED = "notifier.reminder.fired"

EVENTS = [
    EventSpec(DELIVERY_SUCCEEDED, 1, DELIVERIES, DeliveryResult),
    EventSpec(DELIVERY_FAILED, 1, DELIVERIES, DeliveryResult),
    EventSpec(DELIVERY_BOUNCED, 1, DELIVERIES, DeliveryResult),
    EventSpec(DELIVERY_COMPLAINED, 1, DELIVERIES, DeliveryResult),
    EventSpec(REMINDER_FIRED, 1, DELIVERIES, ReminderFired),
]
