"""TokenVerifier against a real JWKS endpoint served from a local thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from clientele_auth_testkit import (
    attacker_key,
    clear_auth_env,
    ec_key,
    make_claims,
    rsa_key,
    sign,
)
from clientele_shared.auth import (
    AuthenticationError,
    AuthSettings,
    AuthUnavailableError,
    TokenIssuer,
    TokenVerifier,
)


@pytest.fixture(autouse=True)
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_auth_env(monkeypatch)


@dataclass
class JwksServer:
    url: str
    document: dict[str, Any] = field(default_factory=dict)
    hits: int = 0


@pytest.fixture
def jwks_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[JwksServer]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = JwksServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits += 1
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def rsa_issuer() -> TokenIssuer:
    return TokenIssuer(rsa_key())


@pytest.fixture
def ec_issuer() -> TokenIssuer:
    return TokenIssuer(ec_key())


@pytest.fixture
def jwks_verifier(
    jwks_server: JwksServer, rsa_issuer: TokenIssuer, ec_issuer: TokenIssuer
) -> TokenVerifier:
    jwks_server.document = {"keys": [rsa_issuer.public_jwk(), ec_issuer.public_jwk()]}
    return TokenVerifier(AuthSettings(jwks_url=jwks_server.url))


async def test_jwks_picks_the_key_named_by_kid(
    jwks_verifier: TokenVerifier,
    jwks_server: JwksServer,
    rsa_issuer: TokenIssuer,
    ec_issuer: TokenIssuer,
) -> None:
    assert jwks_verifier.uses_jwks
    alice = await jwks_verifier.verify(rsa_issuer.mint("alice", directions=["north"]))
    bob = await jwks_verifier.verify(ec_issuer.mint("bob", directions=["south"]))
    assert alice.subject == "alice"
    assert alice.directions == {"north"}
    assert bob.subject == "bob"
    assert bob.directions == {"south"}
    # The key set was fetched once and then served from the cache.
    await jwks_verifier.verify(rsa_issuer.mint("alice"))
    assert jwks_server.hits == 1


async def test_jwks_token_with_wrong_kid_is_refused(
    jwks_verifier: TokenVerifier,
    rsa_issuer: TokenIssuer,
    ec_issuer: TokenIssuer,
) -> None:
    # Signed by an untrusted key while naming the trusted RSA key: the named key is used.
    with pytest.raises(AuthenticationError) as forged:
        await jwks_verifier.verify(sign(make_claims(), attacker_key(), kid=rsa_issuer.kid))
    assert forged.value.detail == "The token signature is invalid."
    # Signed by the trusted RSA key but naming the EC key: algorithm mismatch, refused.
    with pytest.raises(AuthenticationError) as mismatch:
        await jwks_verifier.verify(sign(make_claims(), kid=ec_issuer.kid))
    assert mismatch.value.status == 401


async def test_jwks_unknown_kid_is_refused_without_hammering_the_endpoint(
    jwks_verifier: TokenVerifier,
    jwks_server: JwksServer,
    rsa_issuer: TokenIssuer,
) -> None:
    await jwks_verifier.verify(rsa_issuer.mint("alice"))
    for attempt in range(3):
        with pytest.raises(AuthenticationError) as caught:
            await jwks_verifier.verify(
                sign(make_claims(), attacker_key(), kid=f"unknown-{attempt}")
            )
        assert caught.value.detail == "The token is signed with an unknown key."
        assert caught.value.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert jwks_server.hits == 1  # refreshes on unknown kids are rate limited


async def test_jwks_token_without_kid_is_refused(jwks_verifier: TokenVerifier) -> None:
    import jwt

    token = jwt.encode(make_claims(), rsa_key(), algorithm="RS256")
    with pytest.raises(AuthenticationError) as caught:
        await jwks_verifier.verify(token)
    assert caught.value.detail == "The token header does not name its signing key (kid)."


async def test_jwks_endpoint_down_is_503_not_401(rsa_issuer: TokenIssuer) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = TokenVerifier(
        AuthSettings(jwks_url=f"http://127.0.0.1:{port}/jwks.json", jwks_timeout_seconds=2)
    )
    with pytest.raises(AuthUnavailableError) as caught:
        await verifier.verify(rsa_issuer.mint("alice"))
    assert caught.value.status == 503


def test_jwks_verify_sync(jwks_verifier: TokenVerifier, rsa_issuer: TokenIssuer) -> None:
    assert jwks_verifier.verify_sync(rsa_issuer.mint("dave")).subject == "dave"
