"""The text guard: NUL, lone surrogates and over-deep JSON are a 422 before any handler runs."""

import json

import httpx
import pytest
from clientele_shared.http.middleware import BodySizeLimit
from clientele_shared.http.problems import install_problem_handlers
from clientele_shared.http.textguard import (
    MAX_JSON_DEPTH,
    TextGuard,
    bad_text,
    json_body_problem,
    json_depth_exceeds,
)
from fastapi import FastAPI
from pydantic import BaseModel

calls: list[str] = []


class Item(BaseModel):
    name: str
    tags: list[str] = []


def _app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(TextGuard)
    app.add_middleware(BodySizeLimit, max_bytes=1 << 20)

    @app.post("/items")
    async def create(item: Item) -> dict[str, str]:
        calls.append(item.name)
        return {"name": item.name}

    @app.get("/items/{key}")
    async def read(key: str, q: str = "") -> dict[str, str]:
        calls.append(key)
        return {"key": key, "q": q}

    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    calls.clear()
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=_app()), base_url="http://t")


def test_bad_text() -> None:
    assert bad_text("ООО «Ромашка» 🌼") is None
    assert bad_text("a\x00b") is not None
    assert bad_text("a\ud800b") is not None


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "a\\u0000b"}',
        '{"name": "ok", "tags": ["x", "\\u0000"]}',
        '{"name\\u0000": "ok"}',
        '{"name": "lone \\ud83d surrogate"}',
        '{"name": "lone low \\uDC00"}',
    ],
)
async def test_bad_text_in_json_is_422_and_reaches_no_handler(
    client: httpx.AsyncClient, body: str
) -> None:
    response = await client.post(
        "/items", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "NUL" in response.json()["detail"] or "surrogate" in response.json()["detail"]
    assert calls == []


async def test_valid_surrogate_pairs_and_escaped_backslashes_pass(
    client: httpx.AsyncClient,
) -> None:
    body = '{"name": "\\ud83c\\udf3c and \\\\u0000 as text"}'
    response = await client.post(
        "/items", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 200
    assert response.json() == {"name": "🌼 and \\u0000 as text"}


async def test_deep_nesting_is_422(client: httpx.AsyncClient) -> None:
    body = '{"name": "x", "tags": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = await client.post(
        "/items", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert "nests deeper" in response.json()["detail"]


@pytest.mark.parametrize("url", ["/items/a%00b", "/items/a?q=x%00y", "/items/a?q%00=1"])
async def test_nul_in_path_or_query_is_422(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert calls == []


async def test_ordinary_requests_pass(client: httpx.AsyncClient) -> None:
    assert (await client.get("/items/%D0%B0?q=%D0%B1")).json() == {"key": "а", "q": "б"}
    response = await client.post("/items", json={"name": "Ромашка", "tags": ["a"] * 1000})
    assert response.status_code == 200


def test_depth_counts_only_brackets_outside_strings() -> None:
    wide = json.dumps([{"k": "[[[[[[{{{{"} for _ in range(500)]).encode()
    assert not json_depth_exceeds(wide)
    quoted = json.dumps({"s": '\\"' + "[" * 1000}).encode()
    assert not json_depth_exceeds(quoted)
    deep = b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)
    assert json_depth_exceeds(deep)
    assert not json_depth_exceeds(b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH)


def test_malformed_json_is_left_to_the_parser() -> None:
    assert json_body_problem(b'{"name": "\\u0000"') is None


async def test_the_refusal_names_where_like_a_validation_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/items", json={"name": "ok", "tags": ["x", "a\x00"]})
    body = response.json()
    assert body["title"] == "Validation Failed"
    assert body["errors"] == [
        {
            "location": ["body", "tags", "1"],
            "message": "contains a NUL character (U+0000)",
            "type": "text_not_storable",
        }
    ]
