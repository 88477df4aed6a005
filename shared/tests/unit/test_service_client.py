"""Service-to-service calls carry the caller's service token and the correlation id."""

from pathlib import Path

import httpx
from clientele_shared.auth.dependencies import CurrentPrincipal, install_auth
from clientele_shared.auth.keys import generate_rsa_key, private_key_pem, public_key_pem
from clientele_shared.auth.settings import AuthSettings
from clientele_shared.auth.tokens import ServiceTokenProvider, TokenIssuer, TokenVerifier
from clientele_shared.http.client import ServiceClient
from clientele_shared.http.middleware import CorrelationAndMetrics
from clientele_shared.observability import correlation_id_var
from fastapi import FastAPI


def _peer(public_pem: Path) -> FastAPI:
    app = FastAPI()
    install_auth(app, TokenVerifier(AuthSettings(public_key_file=public_pem)))
    app.add_middleware(CorrelationAndMetrics, service="peer")

    @app.get("/whoami")
    async def whoami(principal: CurrentPrincipal) -> dict[str, object]:
        return {
            "subject": principal.subject,
            "kind": principal.kind,
            "service": principal.service,
            "sees_all": principal.sees_all_directions,
            "correlation_id": correlation_id_var.get(),
        }

    return app


async def test_peer_sees_the_calling_service_and_the_trace(tmp_path: Path) -> None:
    key = generate_rsa_key()
    (tmp_path / "public.pem").write_bytes(public_key_pem(key.public_key()))
    (tmp_path / "private.pem").write_bytes(private_key_pem(key))
    tokens = ServiceTokenProvider("interactions", TokenIssuer(key))
    client = ServiceClient(
        "http://peer",
        tokens,
        transport=httpx.ASGITransport(app=_peer(tmp_path / "public.pem")),
    )
    token = correlation_id_var.set("trace-42")
    try:
        response = await client.get("/whoami")
    finally:
        correlation_id_var.reset(token)
        await client.aclose()
    assert response.status_code == 200
    assert response.json() == {
        "subject": "service:interactions",
        "kind": "service",
        "service": "interactions",
        "sees_all": True,
        "correlation_id": "trace-42",
    }


async def test_a_peer_that_does_not_trust_our_key_refuses(tmp_path: Path) -> None:
    trusted = generate_rsa_key()
    (tmp_path / "public.pem").write_bytes(public_key_pem(trusted.public_key()))
    client = ServiceClient(
        "http://peer",
        ServiceTokenProvider("pipeline", TokenIssuer(generate_rsa_key())),
        transport=httpx.ASGITransport(app=_peer(tmp_path / "public.pem")),
    )
    response = await client.get("/whoami")
    await client.aclose()
    assert response.status_code == 401
