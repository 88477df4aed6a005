"""The FastAPI wiring, exercised through a real ASGI app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
import pytest
from clientele_auth_testkit import clear_auth_env, file_verifier, trusted_issuer
from clientele_shared.auth import (
    CurrentPrincipal,
    Principal,
    Role,
    TokenIssuer,
    TokenVerifier,
    current_principal,
    install_auth,
    require_roles,
)
from clientele_shared.http.problems import PROBLEM_MEDIA_TYPE
from fastapi import Depends, FastAPI
from starlette.requests import Request


@pytest.fixture(autouse=True)
def _clean_auth_env(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_auth_env(monkeypatch)


@pytest.fixture
def verifier(tmp_path: Path) -> TokenVerifier:
    return file_verifier(tmp_path)


@pytest.fixture
def issuer() -> TokenIssuer:
    return trusted_issuer()


def build_app(verifier: TokenVerifier | None) -> FastAPI:
    app = FastAPI()
    if verifier is not None:
        install_auth(app, verifier)

    @app.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, Any]:
        return {"subject": principal.subject, "roles": sorted(principal.roles)}

    @app.post("/notes", status_code=201)
    async def note(principal: CurrentPrincipal) -> dict[str, str]:
        return {"author": principal.subject}

    @app.post("/deals", status_code=201)
    async def create_deal(
        principal: Annotated[Principal, Depends(require_roles(Role.SALES, Role.HEAD_OF_SALES))],
    ) -> dict[str, str]:
        return {"owner": principal.subject}

    @app.post("/plans", status_code=201)
    async def plan(
        principal: Annotated[
            Principal, Depends(require_roles(Role.SALES, Role.SERVICE, admit_confined=True))
        ],
    ) -> dict[str, str]:
        return {"planner": principal.subject}

    return app


@pytest.fixture
async def client(verifier: TokenVerifier) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_missing_header_is_a_401_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/me")
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["type"].endswith("/unauthorized")
    assert body["detail"] == "A bearer token is required."
    assert body["instance"] == "/me"


async def test_other_scheme_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_request"'


async def test_invalid_token_is_a_401_problem(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    token = issuer.mint("alice", roles=[Role.SALES])
    response = await client.get("/me", headers=bearer(token[:-4] + "AAAA"))
    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    assert response.json()["detail"] == "The token signature is invalid."


async def test_good_token_reaches_the_route(client: httpx.AsyncClient, issuer: TokenIssuer) -> None:
    token = issuer.mint("alice", roles=[Role.SALES], directions=["north"])
    response = await client.get("/me", headers={"Authorization": f"bearer  {token}"})
    assert response.status_code == 200
    assert response.json() == {"subject": "alice", "roles": ["sales"]}


async def test_require_roles_refuses_writes_with_403(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    marketer = issuer.mint("mia", roles=[Role.MARKETER])
    response = await client.post("/deals", headers=bearer(marketer))
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["type"].endswith("/forbidden")

    admin = issuer.mint("root", roles=[Role.ADMIN])
    assert (await client.post("/deals", headers=bearer(admin))).status_code == 403

    seller = issuer.mint("alice", roles=[Role.SALES])
    response = await client.post("/deals", headers=bearer(seller))
    assert response.status_code == 201
    assert response.json() == {"owner": "alice"}


async def test_a_confined_service_passes_only_where_admitted(
    client: httpx.AsyncClient, issuer: TokenIssuer
) -> None:
    confined = issuer.mint(
        "service:pipeline",
        roles=[Role.SERVICE, Role.SALES],
        directions=["north"],
        service="pipeline",
        confined=True,
    )
    refused = await client.post("/deals", headers=bearer(confined))
    assert refused.status_code == 403
    assert refused.json()["type"].endswith("/forbidden")
    assert (await client.post("/plans", headers=bearer(confined))).status_code == 201
    # a route that checks no role, a read included, refuses it too: only admitting ones take it
    for method, path in (("POST", "/notes"), ("GET", "/me")):
        answer = await client.request(method, path, headers=bearer(confined))
        assert answer.status_code == 403, (method, path)
    sales = issuer.mint("sam", roles=[Role.SALES], directions=["north"])
    assert (await client.post("/notes", headers=bearer(sales))).status_code == 201
    # the same service unconfined holds the service role; admitting confined ones takes none
    service = issuer.mint("service:pipeline", service="pipeline")
    assert (await client.post("/plans", headers=bearer(service))).status_code == 201
    assert (await client.post("/deals", headers=bearer(service))).status_code == 403
    marketer = issuer.mint("mia", roles=[Role.MARKETER], directions=["north"])
    assert (await client.post("/plans", headers=bearer(marketer))).status_code == 403


async def test_require_roles_still_needs_authentication(client: httpx.AsyncClient) -> None:
    response = await client.post("/deals")
    assert response.status_code == 401


async def test_bearer_without_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers={"Authorization": "Bearer "})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_request"'


async def test_current_principal_can_be_called_directly(
    verifier: TokenVerifier, issuer: TokenIssuer
) -> None:
    app = build_app(verifier)
    token = issuer.mint("erin", roles=[Role.SALES])
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"authorization", f"Bearer {token}".encode())],
        "app": app,
    }
    request = Request(scope)
    principal = await current_principal(request)
    assert principal.subject == "erin"
    assert request.state.principal is principal


def test_require_roles_needs_a_role() -> None:
    with pytest.raises(ValueError, match="at least one role"):
        require_roles()


def test_openapi_declares_the_bearer_scheme(verifier: TokenVerifier) -> None:
    schema = build_app(verifier).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert schema["paths"]["/me"]["get"]["security"] == [{"HTTPBearer": []}]


async def test_missing_install_auth_is_a_programming_error(issuer: TokenIssuer) -> None:
    transport = httpx.ASGITransport(app=build_app(None))
    async with httpx.AsyncClient(transport=transport, base_url="http://crm.test") as http:
        with pytest.raises(RuntimeError, match="install_auth"):
            await http.get("/me", headers=bearer(issuer.mint("alice")))
