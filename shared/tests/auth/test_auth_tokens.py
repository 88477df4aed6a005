from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from clientele_auth_testkit import (
    AUDIENCE,
    ISSUER,
    attacker_key,
    clear_auth_env,
    ec_key,
    file_verifier,
    make_claims,
    rsa_key,
    sign,
    trusted_issuer,
    write_public_pem,
)
from clientele_shared.auth import (
    AuthenticationError,
    AuthSettings,
    Principal,
    Role,
    ServiceTokenProvider,
    TokenIssuer,
    TokenVerifier,
)
from clientele_shared.auth.access import may_write
from clientele_shared.auth.keys import jwk_thumbprint, public_key_pem
from clientele_shared.http.problems import ProblemError
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError


@pytest.fixture(autouse=True)
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_auth_env(monkeypatch)


@pytest.fixture
def verifier(tmp_path: Path) -> TokenVerifier:
    return file_verifier(tmp_path)


@pytest.fixture
def issuer() -> TokenIssuer:
    return trusted_issuer()


# RFC 7638 §3.1 example key and its published SHA-256 thumbprint.
RFC7638_N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)
RFC7638_THUMBPRINT = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


def unsigned_token(claims: dict[str, Any], kid: str) -> str:
    """An ``alg: none`` token, as an attacker would hand-craft it."""
    return f"{segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{segment(claims)}."


def hs256_token(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """Algorithm confusion: HMAC-SHA256 keyed with the (public!) verification key."""
    signing_input = f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{segment(claims)}"
    mac = hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


async def refused(verifier: TokenVerifier, token: str) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    error = caught.value
    assert error.status == 401
    assert error.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert error.detail
    if token:
        assert token not in error.detail
    return error


async def test_valid_token_gives_principal(verifier: TokenVerifier) -> None:
    claims = make_claims(directions=["north", "south"])
    principal = await verifier.verify(sign(claims))
    assert principal == Principal(
        subject="alice",
        kind="user",
        roles=frozenset({"sales"}),
        directions=frozenset({"north", "south"}),
        service=None,
        name="Alice Martin",
        email="alice@example.com",
        expires_at=claims["exp"],
    )


async def test_verify_sync_gives_the_same_principal(verifier: TokenVerifier) -> None:
    token = sign(make_claims())
    assert verifier.verify_sync(token) == await verifier.verify(token)


async def test_service_claim_makes_a_service_principal(verifier: TokenVerifier) -> None:
    token = sign(make_claims(sub="service:notifier", svc="notifier", roles=None, directions=None))
    principal = await verifier.verify(token)
    assert principal.kind == "service"
    assert principal.service == "notifier"
    assert principal.has_role(Role.SERVICE)
    assert principal.sees_all_directions


async def test_forged_signature_is_refused(
    verifier: TokenVerifier,
) -> None:
    error = await refused(verifier, sign(make_claims(roles=["admin"]), attacker_key()))
    assert error.detail == "The token signature is invalid."


async def test_tampered_payload_is_refused(verifier: TokenVerifier) -> None:
    header, _, signature = sign(make_claims()).split(".")
    escalated = f"{header}.{segment(make_claims(roles=['admin']))}.{signature}"
    error = await refused(verifier, escalated)
    assert error.detail == "The token signature is invalid."


@pytest.mark.parametrize(
    ("overrides", "detail"),
    [
        (
            {
                "iat": int(time.time()) - 7200,
                "nbf": int(time.time()) - 7200,
                "exp": int(time.time()) - 60,
            },
            "The token has expired.",
        ),
        ({"nbf": int(time.time()) + 600}, "The token is not valid yet."),
        ({"iat": int(time.time()) + 600}, "The token is not valid yet."),
        ({"aud": "someone-else"}, "The token is not intended for this audience."),
        ({"iss": "https://evil.example"}, "The token was not issued by a trusted issuer."),
        ({"sub": None}, "The token lacks the required 'sub' claim."),
        ({"exp": None}, "The token lacks the required 'exp' claim."),
        ({"aud": None}, "The token lacks the required 'aud' claim."),
        ({"iss": None}, "The token lacks the required 'iss' claim."),
        ({"iat": None}, "The token lacks the required 'iat' claim."),
        ({"sub": ""}, "The token claims are malformed."),
        ({"roles": "admin"}, "The token claims are malformed."),
        ({"directions": [1, 2]}, "The token claims are malformed."),
        ({"svc": 42}, "The token claims are malformed."),
        ({"sub": 42}, "The token claims are malformed."),
        ({"iat": "yesterday"}, "The token claims are malformed."),
        ({"exp": "tomorrow"}, "The token is malformed."),
        ({"exp": str(int(time.time()) + 600)}, "The token claims are malformed."),
        ({"nbf": str(int(time.time()))}, "The token claims are malformed."),
        ({"exp": True}, "The token has expired."),
        ({"directions": None}, "The token lacks the required 'directions' claim."),
    ],
    ids=[
        "expired",
        "nbf-in-future",
        "iat-in-future",
        "wrong-audience",
        "wrong-issuer",
        "missing-sub",
        "missing-exp",
        "missing-aud",
        "missing-iss",
        "missing-iat",
        "empty-sub",
        "roles-not-a-list",
        "directions-not-strings",
        "svc-not-a-string",
        "sub-not-a-string",
        "iat-not-a-number",
        "exp-not-a-number",
        "exp-a-numeric-string",
        "nbf-a-numeric-string",
        "exp-a-boolean",
        "user-without-directions",
    ],
)
async def test_invalid_claims_are_refused(
    verifier: TokenVerifier,
    overrides: dict[str, Any],
    detail: str,
) -> None:
    error = await refused(verifier, sign(make_claims(**overrides)))
    assert error.detail == detail


async def test_leeway_tolerates_small_clock_skew(verifier: TokenVerifier) -> None:
    now = int(time.time())
    # Expired 10 s ago and valid from 10 s in the future: inside the default 30 s leeway.
    assert await verifier.verify(sign(make_claims(exp=now - 10)))
    assert await verifier.verify(sign(make_claims(nbf=now + 10)))


async def test_alg_none_is_refused(verifier: TokenVerifier, issuer: TokenIssuer) -> None:
    error = await refused(verifier, unsigned_token(make_claims(roles=["admin"]), issuer.kid))
    assert error.detail == "The token is signed with an algorithm that is not accepted."


async def test_hs256_signed_with_public_key_is_refused(
    verifier: TokenVerifier,
    issuer: TokenIssuer,
) -> None:
    # The attacker knows the public key (it is published); the HMAC secret is its exact PEM.
    public_pem = public_key_pem(rsa_key().public_key())
    token = hs256_token(make_claims(roles=["admin"]), public_pem, issuer.kid)
    error = await refused(verifier, token)
    assert error.detail == "The token is signed with an algorithm that is not accepted."


async def test_token_signed_with_other_key_type_is_refused(verifier: TokenVerifier) -> None:
    # ES256 is an accepted algorithm, but the configured key is RSA: never try it as EC.
    error = await refused(verifier, sign(make_claims(), ec_key(), algorithm="ES256"))
    assert error.detail == "The token is signed with an algorithm that is not accepted."


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        ("", "The token is malformed."),
        ("not-a-jwt", "The token is malformed."),
        ("a.b.c", "The token is malformed."),
        ("e30.e30.", "The token is signed with an algorithm that is not accepted."),
        ("x" * 20_000, "The token is too long."),
    ],
    ids=["empty", "garbage", "bad-base64", "header-without-alg", "too-long"],
)
async def test_malformed_tokens_are_refused(
    verifier: TokenVerifier, token: str, detail: str
) -> None:
    error = await refused(verifier, token)
    assert error.detail == detail


def test_settings_refuse_symmetric_and_none_algorithms() -> None:
    for algorithms in (["HS256"], ["RS256", "none"], []):
        with pytest.raises(ValidationError):
            AuthSettings(public_key_file=Path("k.pem"), algorithms=algorithms)


def test_settings_read_auth_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_JWKS_URL", "https://idp.example/jwks.json")
    monkeypatch.setenv("AUTH_AUDIENCE", "crm")
    monkeypatch.setenv("AUTH_ALGORITHMS", '["ES256"]')
    settings = AuthSettings()
    assert settings.jwks_url == "https://idp.example/jwks.json"
    assert settings.audience == "crm"
    assert settings.issuer == "clientele"
    assert settings.algorithms == ["ES256"]
    assert settings.leeway_seconds == 30
    assert settings.service_token_ttl_seconds == 300


def test_verifier_needs_a_key_source() -> None:
    with pytest.raises(ValueError, match="jwks_url or public_key_file"):
        TokenVerifier(AuthSettings())


def test_verifier_refuses_key_matching_no_algorithm(tmp_path: Path) -> None:
    pem = write_public_pem(tmp_path / "rsa.pem", rsa_key())
    with pytest.raises(ValueError, match="matches none"):
        TokenVerifier(AuthSettings(public_key_file=pem, algorithms=["ES256"]))


async def test_ec_public_key_file_verifies_es256(tmp_path: Path) -> None:
    pem = write_public_pem(tmp_path / "ec.pem", ec_key())
    verifier = TokenVerifier(AuthSettings(public_key_file=pem))
    token = TokenIssuer(ec_key()).mint("bob", roles=["marketer"], directions=["west"])
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    principal = await verifier.verify(token)
    assert principal.subject == "bob"
    assert principal.directions == {"west"}


def test_kid_is_the_rfc7638_thumbprint() -> None:
    key = jwt.PyJWK({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"}).key
    assert isinstance(key, rsa.RSAPublicKey)
    assert jwk_thumbprint(key) == RFC7638_THUMBPRINT


async def test_issuer_mints_verifiable_tokens(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.mint(
        "carol",
        roles=[Role.HEAD_OF_SALES],
        directions=["north", "east"],
        name="Carol",
        email="carol@example.com",
        ttl_seconds=120,
    )
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.kid == issuer.public_jwk()["kid"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 120
    assert "svc" not in claims
    principal = await verifier.verify(token)
    assert principal.subject == "carol"
    assert principal.roles == {"head_of_sales"}
    assert principal.directions == {"north", "east"}
    assert principal.kind == "user"


def test_issuer_rejects_bad_input(issuer: TokenIssuer) -> None:
    with pytest.raises(ValueError, match="cannot be used"):
        TokenIssuer(rsa_key(), algorithm="ES256")
    with pytest.raises(ValueError, match="ttl"):
        issuer.mint("alice", ttl_seconds=0)
    with pytest.raises(ValueError, match="subject"):
        issuer.mint("")


async def test_service_token_provider_caches_until_near_expiry(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    now = [time.time()]
    provider = ServiceTokenProvider("pipeline", issuer, ttl_seconds=300, clock=lambda: now[0])
    first = provider.token()
    now[0] += 269  # 31 s before expiry: still reused
    assert provider.token() == first
    now[0] += 2  # 29 s before expiry: renewed
    second = provider.token()
    assert second != first
    assert provider.authorization_header() == {"Authorization": f"Bearer {second}"}

    principal = await verifier.verify(first)
    assert principal.kind == "service"
    assert principal.service == "pipeline"
    assert principal.subject == "service:pipeline"
    assert principal.has_role(Role.SERVICE)
    claims = jwt.decode(second, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 300


def test_service_token_provider_from_settings(tmp_path: Path) -> None:
    from clientele_shared.auth.keys import private_key_pem

    key_file = tmp_path / "private.pem"
    key_file.write_bytes(private_key_pem(rsa_key()))
    settings = AuthSettings(private_key_file=key_file, service_token_ttl_seconds=60)
    provider = ServiceTokenProvider.from_settings("notifier", settings)
    claims = jwt.decode(provider.token(), options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 60
    assert claims["svc"] == "notifier"


def test_authentication_error_is_a_problem() -> None:
    error = AuthenticationError("The token has expired.")
    assert isinstance(error, ProblemError)
    assert (error.status, error.title) == (401, "Unauthorized")
    missing = AuthenticationError("A bearer token is required.", error=None)
    assert missing.headers == {"WWW-Authenticate": "Bearer"}


async def test_a_verified_token_is_remembered_not_checked_again(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    decode = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> Any:
        decoded.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    token, other = sign(make_claims()), sign(make_claims(sub="bob"))
    first = await verifier.verify(token)
    assert await verifier.verify(token) == first
    assert verifier.verify_sync(token) == first
    assert (await verifier.verify(other)).subject == "bob"
    assert decoded == [token, other]


async def test_a_remembered_token_still_expires(tmp_path: Path) -> None:
    verifier = TokenVerifier(
        AuthSettings(
            public_key_file=write_public_pem(tmp_path / "public.pem", rsa_key()),
            issuer=ISSUER,
            audience=AUDIENCE,
            leeway_seconds=0,
        )
    )
    token = sign(make_claims(exp=int(time.time()) + 1))
    assert await verifier.verify(token)
    await asyncio.sleep(1.1)
    error = await refused(verifier, token)
    assert error.detail == "The token has expired."


async def test_a_confined_service_token_reaches_only_its_directions(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    provider = ServiceTokenProvider("pipeline", issuer)
    header = provider.confined_header(["north"])
    principal = await verifier.verify(header["Authorization"].removeprefix("Bearer "))
    assert principal.kind == "service"
    assert principal.confined
    assert principal.roles == frozenset()  # no role: only endpoints admitting it take it
    assert not principal.is_service  # no service's reach
    assert principal.can_see(["north"])
    assert not principal.can_see(["south"])
    assert not principal.sees_all_directions
    assert may_write(principal, ["north"])
    assert not may_write(principal, ["south"])
    with pytest.raises(ValueError, match="confined"):
        issuer.mint("service:pipeline", service="pipeline", confined=True)  # no directions


async def test_a_confined_tokens_role_claims_are_ignored(
    issuer: TokenIssuer, verifier: TokenVerifier
) -> None:
    token = issuer.mint(
        "service:pipeline",
        roles=[Role.SERVICE, Role.ADMIN],
        directions=["north"],
        service="pipeline",
        confined=True,
    )
    principal = await verifier.verify(token)
    assert principal.confined
    assert not principal.has_role(Role.SERVICE, Role.ADMIN)
    assert not principal.sees_all_directions


async def test_a_confined_claim_without_a_service_or_directions_is_refused(
    verifier: TokenVerifier,
) -> None:
    user = sign(make_claims(confined=True))
    assert (await refused(verifier, user)).status == 401
    nowhere = sign(make_claims(svc="pipeline", directions=[], confined=True))
    assert (await refused(verifier, nowhere)).status == 401
    odd = sign(make_claims(svc="pipeline", directions=["north"], confined="yes"))
    assert (await refused(verifier, odd)).status == 401
