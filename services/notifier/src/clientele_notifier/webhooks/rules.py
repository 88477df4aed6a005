"""Webhook endpoints: signatures, the URL guard's policy (SSRF), the endpoint models (no I/O)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

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
