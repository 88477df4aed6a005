"""Fixtures for the auth tests: throwaway keys, a verifier on a PEM file, token factories."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from clientele_shared.auth import AuthSettings, TokenIssuer, TokenVerifier
from clientele_shared.auth.keys import generate_rsa_key, public_key_pem
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "clientele"
AUDIENCE = "clientele"

MakeClaims = Callable[..., dict[str, Any]]
Sign = Callable[..., str]


@pytest.fixture(autouse=True)
def _no_auth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AuthSettings reads AUTH_* variables; keep the developer's environment out of the tests."""
    for name in list(os.environ):
        if name.upper().startswith("AUTH_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return generate_rsa_key()


@pytest.fixture(scope="session")
def attacker_key() -> rsa.RSAPrivateKey:
    return generate_rsa_key()


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def public_pem_file(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "public.pem"
    path.write_bytes(public_key_pem(rsa_key.public_key()))
    return path


@pytest.fixture
def settings(public_pem_file: Path) -> AuthSettings:
    return AuthSettings(public_key_file=public_pem_file, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def verifier(settings: AuthSettings) -> TokenVerifier:
    return TokenVerifier(settings)


@pytest.fixture
def issuer(rsa_key: rsa.RSAPrivateKey) -> TokenIssuer:
    return TokenIssuer(rsa_key, issuer=ISSUER, audience=AUDIENCE)


@pytest.fixture
def make_claims() -> MakeClaims:
    """Valid claims for alice (sales, north); keyword overrides, ``None`` removes a claim."""

    def build(**overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": "alice",
            "iat": now,
            "nbf": now,
            "exp": now + 600,
            "roles": ["sales"],
            "directions": ["north"],
            "name": "Alice Martin",
            "email": "alice@example.com",
        }
        for name, value in overrides.items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        return claims

    return build


@pytest.fixture
def sign(issuer: TokenIssuer, rsa_key: rsa.RSAPrivateKey) -> Sign:
    """Sign claims with PyJWT; defaults to the trusted key and its kid."""

    def encode(
        claims: dict[str, Any],
        key: Any = None,
        *,
        algorithm: str = "RS256",
        kid: str | None = None,
    ) -> str:
        signing_key = key if key is not None else rsa_key
        return jwt.encode(
            claims, signing_key, algorithm=algorithm, headers={"kid": kid or issuer.kid}
        )

    return encode
