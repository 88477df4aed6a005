"""Helpers for the auth tests (plain functions, deliberately not a ``conftest.py``).

The repository's root ``conftest.py`` is imported as the top-level module ``conftest`` by other
tests; a second ``conftest.py`` here would replace it in ``sys.modules``. Fixtures therefore
live in the test modules and build on these helpers.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from clientele_shared.auth import AuthSettings, TokenIssuer, TokenVerifier
from clientele_shared.auth.keys import generate_rsa_key, jwk_thumbprint, public_key_pem
from cryptography.hazmat.primitives.asymmetric import ec, rsa

ISSUER = "clientele"
AUDIENCE = "clientele"


@functools.cache
def rsa_key() -> rsa.RSAPrivateKey:
    """The trusted signing key (generated once per test session)."""
    return generate_rsa_key()


@functools.cache
def attacker_key() -> rsa.RSAPrivateKey:
    """A key nobody trusts."""
    return generate_rsa_key()


@functools.cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def clear_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """AuthSettings reads AUTH_* variables: keep the developer's environment out of the test."""
    for name in list(os.environ):
        if name.upper().startswith("AUTH_"):
            monkeypatch.delenv(name)


def write_public_pem(path: Path, key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(public_key_pem(key.public_key()))
    return path


def file_verifier(directory: Path) -> TokenVerifier:
    """A verifier trusting :func:`rsa_key` through a PEM public key file."""
    pem = write_public_pem(directory / "public.pem", rsa_key())
    return TokenVerifier(AuthSettings(public_key_file=pem, issuer=ISSUER, audience=AUDIENCE))


def trusted_issuer() -> TokenIssuer:
    return TokenIssuer(rsa_key(), issuer=ISSUER, audience=AUDIENCE)


def make_claims(**overrides: Any) -> dict[str, Any]:
    """Valid claims for alice (sales, north); keyword overrides, ``None`` removes a claim."""
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


def sign(
    claims: dict[str, Any],
    key: Any = None,
    *,
    algorithm: str = "RS256",
    kid: str | None = None,
) -> str:
    """Sign ``claims`` with PyJWT; defaults to the trusted key and its kid."""
    return jwt.encode(
        claims,
        key if key is not None else rsa_key(),
        algorithm=algorithm,
        headers={"kid": kid or jwk_thumbprint(rsa_key())},
    )
