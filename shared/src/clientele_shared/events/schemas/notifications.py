"""Delivery requests every service sends the notifier, each on its own topic.

The registry maps one (type, version) to one topic, so each requesting service has its own event
types: ``<service>.notification.requested``, ``<service>.reminder.scheduled`` and
``<service>.reminder.cancelled`` on ``clientele.<service>.notifications``.
"""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from clientele_shared.events.registry import EventSpec
from clientele_shared.events.schemas.base import Payload
from clientele_shared.events.topics import (
    CAMPAIGNS,
    DIRECTORY,
    INTERACTIONS,
    PIPELINE,
    notification_requests,
)

REQUESTERS = (DIRECTORY, INTERACTIONS, PIPELINE, CAMPAIGNS)
"""The services that may ask the notifier to deliver something."""

EmailAddress = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, max_length=320, pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"
    ),
]
Kind = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
EndpointName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]


class Channel(enum.StrEnum):
    EMAIL = "email"
    INAPP = "inapp"
    WEBHOOK = "webhook"


class Recipient(Payload):
    """Who receives one delivery: an e-mail address, an employee (in-app) or a webhook endpoint.

    ``employee_id`` ties an e-mail to an employee, so that employee's preferences apply; an
    e-mail to an employee given without ``email`` goes to the employee's address as the
    directory's events last told the notifier (an inactive employee gets no e-mail).
    """

    email: EmailAddress | None = None
    employee_id: str | None = Field(default=None, min_length=1, max_length=200)
    endpoint: EndpointName | None = None
    name: str | None = Field(default=None, max_length=200)


class AttachmentRef(Payload):
    """A file to attach: by URL (fetched at send time) or inline as base64 (small files)."""

    filename: str = Field(min_length=1, max_length=255)
    content_type: str = Field(default="application/octet-stream", max_length=200)
    url: str | None = Field(default=None, max_length=2000)
    content_base64: str | None = Field(default=None, max_length=2_000_000)

    @model_validator(mode="after")
    def _one_source(self) -> AttachmentRef:
        if (self.url is None) == (self.content_base64 is None):
            raise ValueError("an attachment needs exactly one of url or content_base64")
        return self


ADDRESS_FIELDS: dict[Channel, tuple[str, ...]] = {
    Channel.EMAIL: ("email", "employee_id"),
    Channel.INAPP: ("employee_id",),
    Channel.WEBHOOK: ("endpoint",),
}
"""What addresses a recipient on each channel (any one of them)."""


class NotificationRequested(Payload):
    """Deliver one message on one channel to each recipient, at most once per recipient.

    ``idempotency_key`` is unique per requesting service: a repeated request with the same key
    is the same request. The body is ``text``/``html`` or a notifier ``template`` with ``data``.
    """

    idempotency_key: str = Field(min_length=1, max_length=200)
    channel: Channel
    kind: Kind = "generic"
    recipients: list[Recipient] = Field(min_length=1, max_length=1000)
    subject: str = Field(min_length=1, max_length=500)
    text: str | None = Field(default=None, max_length=200_000)
    html: str | None = Field(default=None, max_length=500_000)
    template: str | None = Field(default=None, max_length=100)
    data: dict[str, Any] = Field(default_factory=dict)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=20)
    reply_to: EmailAddress | None = None
    list_unsubscribe: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> NotificationRequested:
        if self.text is None and self.html is None and self.template is None:
            raise ValueError("a notification needs text, html or a template")
        needed = ADDRESS_FIELDS[self.channel]
        for index, recipient in enumerate(self.recipients):
            if all(getattr(recipient, name) is None for name in needed):
                raise ValueError(
                    f"recipient {index}: the {self.channel} channel needs {' or '.join(needed)}"
                )
        return self


class ReminderScheduled(Payload):
    """Schedule, or reschedule (same ``reminder_id``), a reminder to fire once at ``due_at``."""

    reminder_id: uuid.UUID
    due_at: AwareDatetime
    recipient: Recipient
    channel: Channel = Channel.INAPP
    kind: Kind = "reminder"
    subject: str = Field(min_length=1, max_length=500)
    text: str | None = Field(default=None, max_length=20_000)
    payload: dict[str, Any] = Field(default_factory=dict)


class ReminderCancelled(Payload):
    """Cancel a scheduled reminder; a reminder that has fired stays fired."""

    reminder_id: uuid.UUID


def notification_requested(service: str) -> str:
    return f"{service}.notification.requested"


def reminder_scheduled(service: str) -> str:
    return f"{service}.reminder.scheduled"


def reminder_cancelled(service: str) -> str:
    return f"{service}.reminder.cancelled"


EVENTS = [
    spec
    for service in REQUESTERS
    for spec in (
        EventSpec(
            notification_requested(service),
            1,
            notification_requests(service),
            NotificationRequested,
        ),
        EventSpec(
            reminder_scheduled(service), 1, notification_requests(service), ReminderScheduled
        ),
        EventSpec(
            reminder_cancelled(service), 1, notification_requests(service), ReminderCancelled
        ),
    )
]
