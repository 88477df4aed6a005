"""Authentication settings, read from ``AUTH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {
        "RS256",
        "RS384",
        "RS512",
        "PS256",
        "PS384",
        "PS512",
        "ES256",
        "ES256K",
        "ES384",
        "ES512",
        "ES521",
        "EdDSA",
    }
)
"""The only signature algorithms a verifier may accept.

``none`` and the HMAC family (``HS*``) are refused on purpose: accepting HMAC next to public keys
allows the algorithm-confusion attack (a token "signed" with the public key as HMAC secret).
"""


class AuthSettings(BaseSettings):
    """How tokens are verified (and, for services and dev tooling, minted)."""

    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    jwks_url: str | None = None
    """JWKS endpoint of the identity provider; takes precedence over ``public_key_file``."""
    public_key_file: Path | None = None
    """PEM public key used to verify tokens when no JWKS endpoint is configured."""
    issuer: str = "clientele"
    audience: str = "clientele"
    algorithms: list[str] = Field(default_factory=lambda: ["RS256", "ES256", "EdDSA"])
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    private_key_file: Path | None = None
    """PEM private key used to mint service-to-service tokens (and by the dev CLI)."""
    service_token_ttl_seconds: int = Field(default=300, gt=0)
    jwks_cache_seconds: int = Field(default=300, gt=0)
    """How long a fetched key set is trusted before it is fetched again."""
    jwks_timeout_seconds: float = Field(default=5.0, gt=0)

    @field_validator("algorithms")
    @classmethod
    def _only_asymmetric(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one signature algorithm is required")
        refused = [alg for alg in value if alg not in ASYMMETRIC_ALGORITHMS]
        if refused:
            raise ValueError(
                f"only asymmetric algorithms are allowed, refused: {', '.join(refused)}"
            )
        return value
