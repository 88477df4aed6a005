"""Webhooks: signed HTTP POSTs, and the encryption of endpoint secrets at rest."""

from __future__ import annotations

import time
import uuid

import httpx
from cryptography.fernet import Fernet, InvalidToken

from clientele_notifier.domain import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    Outcome,
    SendResult,
    sign,
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
    """POSTs a JSON body with an HMAC-SHA256 signature over "<timestamp>.<body>"."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def send(
        self, url: str, secret: bytes, body: bytes, delivery_id: uuid.UUID, timeout_seconds: float
    ) -> SendResult:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "user-agent": "clientele-notifier",
            WEBHOOK_ID_HEADER: str(delivery_id),
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        try:
            response = await self.client.post(
                url, content=body, headers=headers, timeout=timeout_seconds
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
