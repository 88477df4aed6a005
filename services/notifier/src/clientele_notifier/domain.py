"""Notifier domain: deliveries, retries, signatures, quiet hours, preferences (no I/O)."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import html
import ipaddress
import random
import re
import string
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clientele_shared.events.schemas.notifications import Channel, Recipient
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)


class Notification(BaseModel):
    """One in-app notification in an employee's inbox."""

    id: uuid.UUID
    recipient: str
    title: str
    body: str
    kind: str = "generic"
    data: dict[str, Any] = Field(default_factory=dict)
    created_at: dt.datetime
    read_at: dt.datetime | None


# --- deliveries --------------------------------------------------------------------------------


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
class RetryPolicy:
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


def after_failure(policy: RetryPolicy, attempts: int, result: SendResult) -> DeliveryState:
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


# --- webhook signatures ------------------------------------------------------------------------

SIGNATURE_HEADER = "Clientele-Signature"
TIMESTAMP_HEADER = "Clientele-Timestamp"
WEBHOOK_ID_HEADER = "Clientele-Webhook-Id"
SIGNATURE_TOLERANCE = 300


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """``v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>``."""
    mac = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(
    secret: bytes,
    timestamp: str,
    signature: str,
    body: bytes,
    now: float,
    tolerance: int = SIGNATURE_TOLERANCE,
) -> bool:
    """What a receiver checks: a fresh timestamp and one matching signature (comma-separated
    signatures allow rotating the secret)."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = sign(secret, ts, body)
    return any(
        hmac.compare_digest(expected, candidate.strip()) for candidate in signature.split(",")
    )


# --- the webhook URL guard (SSRF) --------------------------------------------------------------

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
"""Cloud instance metadata services (AWS, ECS, AWS IPv6, Alibaba); GCP's and Azure's are the
first, by name or not."""

PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
"""Private-use networks (RFC 1918, carrier-grade NAT, unique local IPv6): where an on-premises
ERP lives, callable when WEBHOOK_ALLOW_PRIVATE_NETWORKS says so."""


class UrlRefusedError(ValueError):
    """A webhook URL the notifier does not call."""


def address_kind(address: IPAddress) -> str | None:
    """What makes an address not a public one ("loopback", "private", ...); None if public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_unspecified:
        return "unspecified"
    if address.is_multicast:
        return "multicast"
    if any(address in network for network in PRIVATE_NETWORKS):
        return "private"
    if not address.is_global:
        return "reserved"
    return None


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str
    host: str
    """Lower case, without brackets for IPv6."""
    port: int


@dataclass(frozen=True)
class WebhookUrlPolicy:
    """Which webhook URLs the notifier calls: https to public addresses, unless settings allow
    http, private networks, or name hosts and networks outright (WEBHOOK_ALLOWED_HOSTS)."""

    allow_http: bool = False
    allow_private_networks: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_settings(
        cls, allowed: Sequence[str], *, allow_http: bool, allow_private_networks: bool
    ) -> WebhookUrlPolicy:
        """``allowed`` holds host names and IP addresses or networks (``10.1.0.0/16``)."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in allowed:
            entry = entry.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.rstrip("."))
        return cls(allow_http, allow_private_networks, frozenset(hosts), tuple(networks))

    def target(self, url: str) -> WebhookTarget:
        """The scheme, host and port of an acceptable URL; UrlRefusedError otherwise."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise UrlRefusedError(f"not a valid URL: {exc}") from None
        scheme = parts.scheme.lower()
        if scheme not in ("https", "http"):
            raise UrlRefusedError("only https URLs are called")
        if scheme == "http" and not self.allow_http:
            raise UrlRefusedError("only https URLs are called (WEBHOOK_ALLOW_HTTP is off)")
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlRefusedError("the URL has no host")
        return WebhookTarget(scheme, host, port or (443 if scheme == "https" else 80))

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why ``host``, resolved to ``address``, may not be called; None if it may."""
        if host in self.allowed_hosts or any(address in n for n in self.allowed_networks):
            return None
        kind = address_kind(address)
        if kind is None or (kind == "private" and self.allow_private_networks):
            return None
        return (
            f"{host} is a {kind} address"
            if host == str(address)
            else f"{host} resolves to {address}, a {kind} address"
        ) + " (allow it with WEBHOOK_ALLOWED_HOSTS)"


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


# --- preferences and quiet hours ---------------------------------------------------------------


def _valid_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


ClockTime = Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]
ZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_valid_zone)]
KindKey = Annotated[str, StringConstraints(pattern=r"^(\*|[a-z0-9][a-z0-9_.-]{0,99})$")]
Digest = Literal["off", "hourly", "daily"]


def _clock(value: str) -> dt.time:
    hours, minutes = value.split(":")
    return dt.time(int(hours), int(minutes))


def quiet_until(
    now: dt.datetime, start: str | None, end: str | None, zone: str
) -> dt.datetime | None:
    """The end of the quiet period ``now`` falls in (UTC), or None outside quiet hours.

    ``start``/``end`` are local wall-clock times; a window may span midnight (22:00–07:00).
    """
    if start is None or end is None or start == end:
        return None
    tz = ZoneInfo(zone)
    local = now.astimezone(tz)
    begin, finish = _clock(start), _clock(end)
    today = local.date()
    t = local.time().replace(tzinfo=None)
    if begin < finish:
        inside = begin <= t < finish
        end_date = today
    else:  # spans midnight
        inside = t >= begin or t < finish
        end_date = today + dt.timedelta(days=1) if t >= begin else today
    if not inside:
        return None
    return dt.datetime.combine(end_date, finish, tzinfo=tz).astimezone(dt.UTC)


class Preferences(BaseModel):
    """An employee's choices: channels per notification kind ("*" = any other kind), quiet
    hours for e-mail in a time zone, and a digest of e-mails instead of single messages."""

    model_config = ConfigDict(extra="forbid")

    channels: dict[KindKey, list[Channel]] = Field(default_factory=dict, max_length=200)
    quiet_start: ClockTime | None = None
    quiet_end: ClockTime | None = None
    timezone: ZoneName = "UTC"
    digest: Digest = "off"

    @model_validator(mode="after")
    def _both_or_none(self) -> Preferences:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("give both quiet_start and quiet_end, or neither")
        return self

    def allows(self, kind: str, channel: Channel) -> bool:
        chosen = self.channels.get(kind, self.channels.get("*"))
        return chosen is None or channel in chosen

    def plan(
        self, kind: str, channel: Channel, now: dt.datetime
    ) -> tuple[DeliveryState, dt.datetime]:
        """The initial state and first attempt time of a delivery to this employee."""
        if not self.allows(kind, channel):
            return DeliveryState.SUPPRESSED, now
        if channel is Channel.EMAIL and self.digest != "off":
            return DeliveryState.DIGEST, now
        if channel is Channel.EMAIL:
            until = quiet_until(now, self.quiet_start, self.quiet_end, self.timezone)
            if until is not None:
                return DeliveryState.PENDING, until
        return DeliveryState.PENDING, now


DIGEST_PERIOD = {"hourly": dt.timedelta(hours=1), "daily": dt.timedelta(days=1)}


def digest_due(digest: str, oldest_held: dt.datetime, now: dt.datetime) -> bool:
    period = DIGEST_PERIOD.get(digest)
    return period is not None and now - oldest_held >= period


# --- API models --------------------------------------------------------------------------------

EndpointName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,99}$")]
HttpUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]


class WebhookEndpointDraft(BaseModel):
    """An endpoint an admin registers; the secret is write-only."""

    model_config = ConfigDict(extra="forbid")

    name: EndpointName
    url: HttpUrl
    secret: SecretStr = Field(description="at least 32 characters; never returned")
    enabled: bool = True
    timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if not 32 <= len(value.get_secret_value()) <= 512:
            raise ValueError("the secret needs 32 to 512 characters")
        return value


class WebhookEndpointPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: HttpUrl | None = None
    secret: SecretStr | None = None
    enabled: bool | None = None
    timeout_seconds: float | None = Field(default=None, gt=0, le=60)
    max_attempts: int | None = Field(default=None, ge=1, le=50)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 32 <= len(value.get_secret_value()) <= 512:
            raise ValueError("the secret needs 32 to 512 characters")
        return value


class WebhookEndpoint(BaseModel):
    """An endpoint as the API shows it: never its secret."""

    id: uuid.UUID
    name: str
    url: str
    enabled: bool
    timeout_seconds: float
    max_attempts: int | None
    description: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


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


class Reminder(BaseModel):
    id: uuid.UUID
    requester: str
    state: str
    due_at: dt.datetime
    channel: Channel
    subject: str
    fired_at: dt.datetime | None
