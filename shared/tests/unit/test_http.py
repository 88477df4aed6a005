"""Problem details, request size limits and correlation ids, on a bare app."""

import httpx
import pytest
from clientele_shared.events.inbox import RetryPolicy
from clientele_shared.http.middleware import BodySizeLimit, CorrelationAndMetrics
from clientele_shared.http.problems import (
    PROBLEM_MEDIA_TYPE,
    NotFound,
    document_problems,
    install_problem_handlers,
)
from clientele_shared.observability import correlation_id_var
from fastapi import FastAPI
from pydantic import BaseModel


class Item(BaseModel):
    name: str


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=1024)
    app.add_middleware(CorrelationAndMetrics, service="test")

    @app.post("/items")
    async def create(item: Item) -> dict[str, str | None]:
        return {"name": item.name, "correlation_id": correlation_id_var.get()}

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound("No such thing.")

    document_problems(app)
    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t")


async def test_validation_error_is_a_problem_document(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json={"name": 5})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Validation Failed"
    assert body["errors"][0]["location"] == ["body", "name"]


async def test_not_found_and_unknown_route_are_problems(client: httpx.AsyncClient) -> None:
    for path in ("/missing", "/nowhere"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["status"] == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_declared_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.json()["title"] == "Content Too Large"


async def test_streamed_oversized_body_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(4):
            yield b"y" * 512

    response = await client.post("/items", content=chunks())
    assert response.status_code == 413


async def test_correlation_id_is_kept_or_made(client: httpx.AsyncClient) -> None:
    given = await client.post("/items", json={"name": "Ёлка"}, headers={"X-Correlation-ID": "abc"})
    assert given.headers["x-correlation-id"] == "abc"
    assert given.json() == {"name": "Ёлка", "correlation_id": "abc"}
    made = await client.post("/items", json={"name": "a"})
    assert len(made.headers["x-correlation-id"]) == 32


def test_retry_backoff_grows_and_is_capped() -> None:
    policy = RetryPolicy(max_attempts=10, initial_backoff=0.1, max_backoff=1.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4, 5, 9)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_upload_paths_get_their_own_larger_limit() -> None:
    limit = BodySizeLimit(_app(), max_bytes=1024, larger={r"/v1/things/[^/]+/files": 10_000})
    assert limit.limit_for("/v1/things/42/files") == 10_000
    assert limit.limit_for("/v1/things/42/files/extra") == 1024
    assert limit.limit_for("/v1/things") == 1024


async def test_every_operation_declares_the_problems_it_answers(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
    for path in ("/items", "/missing"):
        for operation in schema["paths"][path].values():
            for status in ("401", "403", "404", "409", "412", "422", "428"):
                assert operation["responses"][status]["content"] == {PROBLEM_MEDIA_TYPE: problem}
    assert "200" in schema["paths"]["/items"]["post"]["responses"]  # the route's own answer stays
    assert "HTTPValidationError" not in schema["components"]["schemas"]  # never answered
    answered = await client.post("/items", json={"name": 5})
    assert answered.headers["content-type"] == PROBLEM_MEDIA_TYPE
