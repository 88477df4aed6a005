"""HTTP of the built-in token issuer: sign-in and the JWKS."""

from __future__ import annotations

from typing import Any

from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Request

from clientele_directory.auth import service
from clientele_directory.employees.rules import AccessToken, Credentials

router = APIRouter(tags=["auth"])
ISSUER_STATE_KEY = "token_issuer"


def issuer_of(request: Request) -> TokenIssuer:
    issuer = getattr(request.app.state, ISSUER_STATE_KEY, None)
    if not isinstance(issuer, TokenIssuer):
        raise service.IssuerUnavailable(
            "The built-in token issuer is not configured (AUTH_PRIVATE_KEY_FILE)."
        )
    return issuer


@router.post("/v1/auth/token")
async def issue_token(
    credentials: Credentials, request: Request, runtime: CurrentRuntime
) -> AccessToken:
    """Sign in with e-mail and password; answers a bearer token (401 when wrong, 429 when
    there were too many attempts for this e-mail or from this address)."""
    return await service.issue_token(
        runtime=runtime,
        issuer=issuer_of(request),
        credentials=credentials,
        client=request.client.host if request.client else "unknown",
    )


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> dict[str, Any]:
    """The public key of the built-in issuer, for services verifying its tokens by JWKS."""
    return issuer_of(request).jwks()
