"""How a rule's call of the interactions service reads the answers (no network: a mock
transport stands for the peer): what is retried, what fails for good, and what is sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from clientele_pipeline.automation.peers import Interactions, PeerRefused, PeerUnavailable
from clientele_pipeline.settings import PipelineSettings
from clientele_shared.auth.keys import generate_rsa_key, private_key_pem
from clientele_shared.auth.settings import AuthSettings
from clientele_shared.auth.tokens import ServiceTokenProvider, TokenIssuer
from clientele_shared.http.client import ServiceClient

BODY = {"subject": "Звонок", "organization_id": "o", "deal_id": "d"}
PROBLEM = "https://clientele.dev/problems/"


def _peer(answer: httpx.Response | Exception, seen: list[httpx.Request]) -> Interactions:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if isinstance(answer, Exception):
            raise answer
        return answer

    tokens = ServiceTokenProvider("pipeline", TokenIssuer(generate_rsa_key()))
    client = ServiceClient("http://interactions", tokens, transport=httpx.MockTransport(handle))
    return Interactions(client)


def _problem(status: int, kind: str) -> httpx.Response:
    body = {"type": PROBLEM + kind, "title": kind, "status": status, "detail": "d"}
    return httpx.Response(status, json=body)


async def test_a_planned_contact_is_asked_for_with_the_key_confined_and_canonical() -> None:
    seen: list[httpx.Request] = []
    created = httpx.Response(201, json={"interaction": {"id": "i-1"}, "next_planned": None})
    found = await _peer(created, seen).plan(BODY, ["north"], "automation:f:0")
    assert found == {"id": "i-1"}
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/interactions"
    assert request.headers["Idempotency-Key"] == "automation:f:0"
    assert request.content == json.dumps(BODY, sort_keys=True, separators=(",", ":")).encode()
    token = request.headers["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["confined"] is True
    assert claims["directions"] == ["north"]
    assert claims["svc"] == "pipeline"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        _problem(500, "internal-error"),
        _problem(503, "idempotency-unavailable"),
        _problem(429, "too-many-requests"),
        _problem(409, "idempotency-key-in-progress"),
        httpx.Response(502, text="<html>bad gateway</html>"),
    ],
)
async def test_what_may_pass_is_retried_with_the_same_request(answer: Any) -> None:
    with pytest.raises(PeerUnavailable) as caught:
        await _peer(answer, []).plan(BODY, ["north"], "k")
    assert caught.value.request == BODY


@pytest.mark.parametrize(
    "answer",
    [
        _problem(422, "validation-error"),
        _problem(422, "idempotency-key-reused"),
        _problem(404, "not-found"),
        _problem(403, "forbidden-direction"),
        _problem(409, "counterparty-blocked"),
    ],
)
async def test_a_refusal_fails_the_step_for_good(answer: httpx.Response) -> None:
    with pytest.raises(PeerRefused, match=str(answer.status_code)) as caught:
        await _peer(answer, []).plan(BODY, ["north"], "k")
    assert caught.value.blocked == (answer.status_code == 409)


def test_without_a_key_file_there_is_no_peer_and_the_service_still_starts(tmp_path: Path) -> None:
    """The Kubernetes base mounts the signing key from an optional Secret: a path naming no
    file is no key (the steps then fail, recorded), not a crash at start."""
    key = tmp_path / "private.pem"

    def settings() -> PipelineSettings:
        return PipelineSettings(auth=AuthSettings(private_key_file=key))

    assert Interactions.from_settings(settings()) is None
    assert Interactions.from_settings(PipelineSettings(auth=AuthSettings())) is None
    key.write_bytes(private_key_pem(generate_rsa_key()))
    assert Interactions.from_settings(settings()) is not None
