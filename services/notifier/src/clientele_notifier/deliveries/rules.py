"""Deliveries: their states, retries, recipients and addresses, the content of a message
(templates), and the delivery log's models (no I/O)."""

from __future__ import annotations

import datetime as dt
import enum
import html
import random
import re
import string
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from clientele_shared.events.schemas.notifications import Channel, Recipient
from pydantic import (
    BaseModel,
    Field,
)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    """Waiting for its first attempt (possibly until quiet hours end)."""
    SENDING = "sending"
    """Claimed by a worker; the claim expires at next_attempt_at (a crashed worker)."""
    RETRY = "retry"
    """Failed transiently; tried again at next_attempt_at."""
    SENT = "sent"
    BOUNCED = "bounced"
    """The receiving server refused the recipient permanently."""
    DEAD = "dead"
    """Failed after the last attempt or permanently: a dead-letter record tells why."""
    SUPPRESSED = "suppressed"
    """Not sent: the recipient's preferences exclude this channel for this kind."""
    DIGEST = "digest"
    """Held for the recipient's digest."""
    DIGESTED = "digested"
    """Sent as part of a digest."""


ACTIVE_STATES = (DeliveryState.PENDING, DeliveryState.RETRY, DeliveryState.SENDING)


class Outcome(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"
    """A transient failure: try again later."""
    BOUNCED = "bounced"
    """A permanent refusal of the recipient."""
    FAILED = "failed"
    """A permanent failure that is not a bounce (unknown endpoint, 4xx from a webhook)."""
    DEFERRED = "deferred"
    """Not attempted (rate limit): no attempt is counted."""


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    detail: str = ""
    retry_after: float | None = None


@dataclass(frozen=True)
class DeliveryRetryPolicy:
    """Exponential back-off with jitter for one channel."""

    max_attempts: int
    initial_backoff: float
    max_backoff: float = 3600.0

    def backoff(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): "equal jitter".

        The ceiling doubles per attempt up to ``max_backoff``; the delay is drawn uniformly from
        its upper half, so retries of many deliveries spread out but never come early.
        """
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** max(0, attempt - 1))
        return float(ceiling / 2 + (rng or random).uniform(0, ceiling / 2))


def after_failure(policy: DeliveryRetryPolicy, attempts: int, result: SendResult) -> DeliveryState:
    """The next state of a delivery whose attempt number ``attempts`` ended with ``result``."""
    if result.outcome is Outcome.BOUNCED:
        return DeliveryState.BOUNCED
    if result.outcome is Outcome.FAILED or attempts >= policy.max_attempts:
        return DeliveryState.DEAD
    return DeliveryState.RETRY


EMPLOYEE_ADDRESS = "employee:"
"""The prefix of the delivery key of an e-mail to an employee given without an address."""


def recipient_address(channel: Channel, recipient: Recipient) -> str:
    """The delivery key of a recipient on a channel (unique per request and channel): the
    e-mail address, ``employee:<id>`` for an e-mail to an employee given by id only (resolved
    when sent), the employee (in-app), the endpoint (webhook)."""
    if channel is Channel.EMAIL:
        if recipient.email is not None:
            return recipient.email.lower()
        if recipient.employee_id is not None:
            return EMPLOYEE_ADDRESS + recipient.employee_id
    value = recipient.employee_id if channel is Channel.INAPP else recipient.endpoint
    if value is None:
        raise ValueError(f"the {channel} channel needs a recipient address")
    return value


@dataclass(frozen=True)
class EmployeeContact:
    """An employee as the directory's events last told the notifier."""

    email: str | None
    name: str | None
    active: bool


@dataclass(frozen=True)
class EmailTarget:
    """Where an e-mail delivery goes now, or why it does not go (``refusal``)."""

    address: str | None
    name: str | None = None
    refusal: SendResult | None = None
    suppressed: bool = False
    """The refusal is final but not a failure of delivery: an inactive employee."""


def email_target(
    recipient: str, employee_id: str | None, employee: EmployeeContact | None
) -> EmailTarget:
    """The address of an e-mail delivery at send time: its own, or for a delivery to an
    employee by id the employee's current one. An inactive employee gets no e-mail; an employee
    whose address is not known (yet: the directory's event may still be on its way) is tried
    again later."""
    if employee_id is not None and employee is not None and not employee.active:
        return EmailTarget(
            None,
            refusal=SendResult(Outcome.FAILED, f"employee {employee_id} is inactive: no e-mail"),
            suppressed=True,
        )
    name = employee.name if employee is not None else None
    if not recipient.startswith(EMPLOYEE_ADDRESS):
        return EmailTarget(recipient, name)
    if employee is None or not employee.email:
        return EmailTarget(
            None,
            refusal=SendResult(
                Outcome.RETRY, f"no e-mail address is known for employee {employee_id}"
            ),
        )
    return EmailTarget(employee.email.lower(), name)


def email_domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


def rate_limit_key(channel: Channel, address: str) -> str:
    """What the per-recipient-domain rate limit counts: the e-mail domain, the endpoint."""
    if channel is Channel.EMAIL:
        return f"email:{email_domain(address)}"
    return f"{channel.value}:{address}"


# --- content -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    subject: str
    text: str
    html: str | None = None


TEMPLATES: dict[str, Template] = {
    "generic": Template("$subject", "$message", "<p>$message</p>"),
    "reminder": Template(
        "Reminder: $subject",
        "Reminder: $subject\n\n$message",
        "<p><strong>Reminder:</strong> $subject</p><p>$message</p>",
    ),
    "deal-assigned": Template(
        "Deal assigned: $deal",
        "You are now responsible for the deal $deal ($organization).",
        "<p>You are now responsible for the deal <b>$deal</b> ($organization).</p>",
    ),
    "digest": Template("$subject", "$message", None),
}


class UnknownTemplateError(ValueError):
    pass


@dataclass(frozen=True)
class Content:
    subject: str
    text: str
    html: str | None


def render(
    subject: str,
    text: str | None,
    html_body: str | None,
    template: str | None,
    data: Mapping[str, Any],
) -> Content:
    """The subject and bodies of a message: given directly or rendered from a template.

    Template values are substituted as text (``$name``); in the HTML part they are escaped.
    """
    if template is None:
        body = text if text is not None else strip_tags(html_body or "")
        return Content(subject, body, html_body)
    found = TEMPLATES.get(template)
    if found is None:
        raise UnknownTemplateError(f"unknown template {template!r}")
    values = {"subject": subject, "message": text or "", **{k: str(v) for k, v in data.items()}}
    escaped = {name: html.escape(value) for name, value in values.items()}
    return Content(
        string.Template(found.subject).safe_substitute(values),
        string.Template(found.text).safe_substitute(values),
        string.Template(found.html).safe_substitute(escaped) if found.html else html_body,
    )


_TAG = re.compile(r"<[^>]+>")


def strip_tags(value: str) -> str:
    return html.unescape(_TAG.sub("", value)).strip()


class DeliveryAttempt(BaseModel):
    attempt: int
    outcome: str
    detail: str | None
    duration_ms: float | None
    at: dt.datetime


class Delivery(BaseModel):
    id: uuid.UUID
    request_id: uuid.UUID
    requester: str
    idempotency_key: str
    kind: str
    channel: Channel
    recipient: str
    state: DeliveryState
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    sent_at: dt.datetime | None
    created_at: dt.datetime
    dead_letter_reason: str | None = None
    log: list[DeliveryAttempt] = Field(default_factory=list)
