"""Webhooks: signed HTTP POSTs to vetted addresses, and the encryption of endpoint secrets."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import httpx
from cryptography.fernet import Fernet, InvalidToken

from clientele_notifier.deliveries.rules import Outcome, SendResult
from clientele_notifier.webhooks.rules import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    IPAddress,
    UrlRefusedError,
    WebhookUrlPolicy,
    sign,
)

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]


class UnresolvableHostError(OSError):
    """The host of a webhook URL does not resolve (now)."""


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses a host name resolves to."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnresolvableHostError(f"{host} does not resolve: {exc.strerror}") from None
    except UnicodeError:  # a label IDNA cannot encode (empty, or over 63 characters)
        raise UnresolvableHostError(f"{host} is not a valid host name") from None
    found: dict[IPAddress, None] = {}
    for *_, sockaddr in infos:
        found[ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])] = None
    if not found:
        raise UnresolvableHostError(f"{host} does not resolve")
    return list(found)


@dataclass(frozen=True)
class PinnedRequest:
    """Where to send a webhook: the vetted address in the URL, the name in Host and TLS SNI."""

    url: str
    host_header: str
    sni_hostname: str | None


class WebhookGuard:
    """Checks a URL against the policy and every address its host resolves to, and pins the
    request to a checked address: the name is resolved once, so a DNS answer that changes
    between the check and the connection (rebinding) cannot redirect the call."""

    def __init__(self, policy: WebhookUrlPolicy, resolver: Resolver = resolve) -> None:
        self.policy = policy
        self.resolver = resolver

    async def pin(self, url: str) -> PinnedRequest:
        """UrlRefusedError for a URL the policy refuses; UnresolvableHostError when its host
        does not resolve."""
        target = self.policy.target(url)
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(target.host)]
        except ValueError:
            addresses = await self.resolver(target.host, target.port)
        for address in addresses:
            reason = self.policy.refusal(target.host, address)
            if reason is not None:
                raise UrlRefusedError(reason)
        address = addresses[0]
        parts = urlsplit(url)
        literal = f"[{address}]" if address.version == 6 else str(address)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo + '@' if userinfo else ''}{literal}:{target.port}"
        is_name = target.host != str(address)
        return PinnedRequest(
            url=urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
            host_header=parts.netloc.rpartition("@")[2],
            sni_hostname=target.host if is_name and target.scheme == "https" else None,
        )


RETRYABLE_STATUS = frozenset({408, 409, 425, 429})


class SecretsNotConfiguredError(RuntimeError):
    """WEBHOOK_SECRETS_KEY is not set: endpoint secrets cannot be stored or read."""


class SecretBox:
    """Encrypts endpoint secrets with a Fernet key (AES-128-CBC + HMAC-SHA256)."""

    def __init__(self, key: str | None) -> None:
        self._fernet = Fernet(key.encode()) if key else None

    @property
    def configured(self) -> bool:
        return self._fernet is not None

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise SecretsNotConfiguredError("WEBHOOK_SECRETS_KEY is not set")
        return self._fernet

    def encrypt(self, secret: str) -> bytes:
        return self._require().encrypt(secret.encode())

    def decrypt(self, token: bytes) -> bytes:
        try:
            return self._require().decrypt(token)
        except InvalidToken:
            raise SecretsNotConfiguredError(
                "an endpoint secret does not decrypt with WEBHOOK_SECRETS_KEY"
            ) from None


class WebhookSender:
    """POSTs a JSON body with an HMAC-SHA256 signature over "<timestamp>.<body>" to an address
    the guard vetted at that moment."""

    def __init__(self, client: httpx.AsyncClient, guard: WebhookGuard) -> None:
        self.client = client
        self.guard = guard

    async def send(
        self, url: str, secret: bytes, body: bytes, delivery_id: uuid.UUID, timeout_seconds: float
    ) -> SendResult:
        try:
            pinned = await self.guard.pin(url)
        except UrlRefusedError as exc:
            return SendResult(Outcome.FAILED, f"refused: {exc}")
        except UnresolvableHostError as exc:
            return SendResult(Outcome.RETRY, str(exc))
        timestamp = int(time.time())
        headers = {
            "host": pinned.host_header,
            "content-type": "application/json",
            "user-agent": "clientele-notifier",
            WEBHOOK_ID_HEADER: str(delivery_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        try:
            response = await self.client.post(
                pinned.url,
                content=body,
                headers=headers,
                timeout=timeout_seconds,
                extensions={"sni_hostname": pinned.sni_hostname} if pinned.sni_hostname else None,
            )
        except httpx.TimeoutException:
            return SendResult(Outcome.RETRY, f"timed out after {timeout_seconds}s")
        except httpx.HTTPError as exc:
            return SendResult(Outcome.RETRY, repr(exc)[:1000])
        detail = f"HTTP {response.status_code}"
        if 200 <= response.status_code < 300:
            return SendResult(Outcome.SENT, detail)
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUS:
            return SendResult(Outcome.RETRY, detail, _retry_after(response))
        return SendResult(Outcome.FAILED, detail)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None
