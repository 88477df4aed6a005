"""Secret calendar feed tokens (pure), for calendar clients that cannot send a bearer token:
a token is the feed's id and a 32-byte random secret, base64url without padding; only the
secret's SHA-256 is stored, compared in constant time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

SECRET_BYTES = 32
TOKEN_LENGTH = 64
"""Characters of a token: base64url of 16 + 32 bytes."""


@dataclass(frozen=True)
class FeedToken:
    feed_id: uuid.UUID
    token: str
    """Shown once, in the feed's URL."""
    secret_sha256: str


def secret_digest(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()


def new_token() -> FeedToken:
    feed_id = uuid.uuid4()
    secret = secrets.token_bytes(SECRET_BYTES)
    token = base64.urlsafe_b64encode(feed_id.bytes + secret).decode().rstrip("=")
    return FeedToken(feed_id, token, secret_digest(secret))


def parse_token(token: str) -> tuple[uuid.UUID, bytes] | None:
    """The feed id and secret of a well-formed token; None otherwise."""
    if len(token) != TOKEN_LENGTH:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 + SECRET_BYTES:
        return None
    return uuid.UUID(bytes=raw[:16]), raw[16:]


def secret_matches(stored_sha256: str, secret: bytes) -> bool:
    """Whether ``secret`` is the one whose digest was stored (constant time)."""
    return hmac.compare_digest(stored_sha256.encode(), secret_digest(secret).encode())
