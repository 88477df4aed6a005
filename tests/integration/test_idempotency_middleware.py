"""Idempotency-Key on a bare app against a real Redis: what is kept, released, refused."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path

import httpx
import pytest
from clientele_shared.auth.dependencies import CurrentPrincipal, install_auth
from clientele_shared.auth.keys import generate_rsa_key
from clientele_shared.auth.settings import AuthSettings
from clientele_shared.auth.tokens import TokenIssuer, TokenVerifier
from clientele_shared.http.idempotency import IdempotencyKeys
from clientele_shared.http.problems import install_problem_handlers
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import free_port
from fastapi import FastAPI, Response, UploadFile
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from redis.asyncio import Redis

pytestmark = pytest.mark.integration


class Thing(BaseModel):
    name: str
    delay: float = 0.0


class Calls:
    """How many times each endpoint ran."""

    def __init__(self) -> None:
        self.count: dict[str, int] = {}

    def add(self, name: str) -> int:
        self.count[name] = self.count.get(name, 0) + 1
        return self.count[name]


def _app(redis: Redis, verifier: TokenVerifier, calls: Calls) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_auth(app, verifier)
    app.add_middleware(
        IdempotencyKeys,
        service=f"test-{uuid.uuid4().hex[:8]}",
        redis=redis,
        verify=verifier.verify,
        ttl_seconds=60,
        max_response_bytes=4096,
    )

    @app.post("/things", status_code=201)
    async def create(thing: Thing, _: CurrentPrincipal, response: Response) -> dict[str, object]:
        await asyncio.sleep(thing.delay)
        number = calls.add("things")
        response.headers["Location"] = f"/things/{number}"
        response.headers["ETag"] = 'W/"1"'
        response.headers["X-Other"] = "not kept"
        return {"number": number, "name": thing.name, "id": str(uuid.uuid4())}

    @app.patch("/things/{number}")
    async def change(number: int, thing: Thing, _: CurrentPrincipal) -> dict[str, object]:
        return {"number": number, "name": thing.name, "run": calls.add("patch")}

    @app.post("/flaky")
    async def flaky(_: CurrentPrincipal) -> JSONResponse:
        run = calls.add("flaky")
        return JSONResponse({"run": run}, status_code=503 if run == 1 else 200)

    @app.post("/big")
    async def big(_: CurrentPrincipal) -> dict[str, object]:
        return {"run": calls.add("big"), "padding": "x" * 10_000}

    @app.post("/empty")
    async def empty(_: CurrentPrincipal) -> dict[str, int]:
        return {"run": calls.add("empty")}

    @app.post("/upload")
    async def upload(file: UploadFile, _: CurrentPrincipal) -> dict[str, object]:
        size = len(await file.read())
        return {"run": calls.add("upload"), "size": size}

    return app


@pytest.fixture(scope="module")
def keys(issuer: TokenIssuer, auth_keys: Path) -> tuple[TokenIssuer, TokenVerifier]:
    return issuer, TokenVerifier(AuthSettings(public_key_file=auth_keys / "public.pem"))


@pytest.fixture
async def redis(infra: Infrastructure) -> AsyncIterator[Redis]:
    client = Redis.from_url(infra.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def client(
    redis: Redis, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> httpx.AsyncClient:
    app = _app(redis, keys[1], calls)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def _as(issuer: TokenIssuer, subject: str, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {issuer.mint(subject)}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


async def test_a_retry_gets_the_first_answer(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    alice = _as(keys[0], "alice", "k-1")
    first = await client.post("/things", json={"name": "a"}, headers=alice)
    again = await client.post("/things", json={"name": "a"}, headers=_as(keys[0], "alice", "k-1"))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["location"] == first.headers["location"] == "/things/1"
    assert again.headers["etag"] == 'W/"1"'
    assert again.headers["content-type"] == "application/json"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert "x-other" not in again.headers
    assert calls.count["things"] == 1

    reused = await client.post("/things", json={"name": "b"}, headers=alice)
    assert reused.status_code == 422
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("/idempotency-key-reused")

    other_path = await client.patch("/things/1", json={"name": "a"}, headers=alice)
    assert other_path.status_code == 200, "another method and path is another key"
    assert calls.count == {"things": 1, "patch": 1}


async def test_without_the_header_nothing_changes(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    for _ in range(2):
        response = await client.post("/things", json={"name": "a"}, headers=_as(keys[0], "a"))
        assert "idempotent-replayed" not in response.headers
    assert calls.count["things"] == 2


async def test_the_key_belongs_to_the_verified_caller(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    issuer = keys[0]
    first = await client.post("/things", json={"name": "a"}, headers=_as(issuer, "alice", "k"))
    bob = await client.post("/things", json={"name": "a"}, headers=_as(issuer, "bob", "k"))
    assert bob.status_code == 201
    assert "idempotent-replayed" not in bob.headers
    assert bob.json()["number"] != first.json()["number"]
    forger = TokenIssuer(generate_rsa_key())
    forged = await client.post("/things", json={"name": "a"}, headers=_as(forger, "alice", "k"))
    assert forged.status_code == 401, "a forged token never reads alice's answer"
    assert first.json()["id"] not in forged.text
    anonymous = await client.post("/things", json={"name": "a"}, headers={"Idempotency-Key": "k"})
    assert anonymous.status_code == 401
    assert calls.count["things"] == 2


async def test_two_at_the_same_moment_run_once(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    headers = _as(keys[0], "alice", "same-moment")
    slow = {"name": "a", "delay": 0.5}
    answers = await asyncio.gather(
        *(client.post("/things", json=slow, headers=headers) for _ in range(5))
    )
    assert calls.count["things"] == 1
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409, 409, 409, 409]
    busy = next(answer for answer in answers if answer.status_code == 409)
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["type"].endswith("/idempotency-key-in-progress")
    later = await client.post("/things", json=slow, headers=headers)
    assert later.headers["idempotent-replayed"] == "true"
    created = next(answer for answer in answers if answer.status_code == 201)
    assert later.content == created.content


async def test_a_server_error_releases_the_key(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    headers = _as(keys[0], "alice", "flaky-1")
    assert (await client.post("/flaky", headers=headers)).status_code == 503
    second = await client.post("/flaky", headers=headers)
    assert second.status_code == 200
    assert second.json() == {"run": 2}
    third = await client.post("/flaky", headers=headers)
    assert third.json() == {"run": 2}
    assert third.headers["idempotent-replayed"] == "true"


async def test_an_answer_too_large_is_not_kept(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    headers = _as(keys[0], "alice", "big-1")
    for run in (1, 2):
        response = await client.post("/big", headers=headers)
        assert response.json()["run"] == run
        assert "idempotent-replayed" not in response.headers


async def test_an_empty_body_is_kept_too(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    headers = _as(keys[0], "alice", "empty-1")
    await client.post("/empty", headers=headers)
    again = await client.post("/empty", headers=headers)
    assert again.json() == {"run": 1}
    assert again.headers["idempotent-replayed"] == "true"


async def test_an_upload_retried_with_a_new_boundary_is_replayed(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    headers = _as(keys[0], "alice", "upload-1")
    data = b"inn;name\n7707083893;Romashka\n" * 100_000  # 3 MB: past the first MiB it is
    # hashed as the app reads it (a file object goes in 64 KiB chunks)

    def post(content: bytes) -> Awaitable[httpx.Response]:
        files = {"file": ("orgs.csv", io.BytesIO(content))}
        return client.post("/upload", files=files, headers=headers)

    first = await post(data)
    again = await post(data)
    assert first.json() == {"run": 1, "size": len(data)}
    assert again.headers["idempotent-replayed"] == "true"
    other = await post(data[:-1] + b"2")
    assert other.status_code == 422
    assert calls.count["upload"] == 1


async def test_a_bad_key_is_a_problem(
    client: httpx.AsyncClient, keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    response = await client.post(
        "/things", json={"name": "a"}, headers=_as(keys[0], "alice", "x" * 256)
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/invalid-idempotency-key")
    assert calls.count == {}


async def test_without_redis_a_keyed_request_is_refused_and_others_served(
    keys: tuple[TokenIssuer, TokenVerifier], calls: Calls
) -> None:
    down = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0")
    app = _app(down, keys[1], calls)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://t"
    ) as client:
        keyed = await client.post("/things", json={"name": "a"}, headers=_as(keys[0], "a", "k"))
        plain = await client.post("/things", json={"name": "a"}, headers=_as(keys[0], "a"))
    await down.aclose()
    assert keyed.status_code == 503
    assert keyed.headers["retry-after"] == "5"
    assert keyed.json()["type"].endswith("/idempotency-unavailable")
    assert plain.status_code == 201
    assert calls.count["things"] == 1
