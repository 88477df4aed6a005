"""The directory client on a fake transport (unit tests): pages followed, duplicates counted
once, the caller's token forwarded, every failure a problem answer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from clientele_campaigns.clients.directory import DirectoryClient
from clientele_shared.http.problems import ProblemError
from fastapi.exceptions import RequestValidationError

LIST = uuid.uuid4()
IDS = [uuid.uuid4() for _ in range(5)]


def _client(handler: Any, max_members: int = 100) -> DirectoryClient:
    return DirectoryClient(
        "http://directory.test/",
        timeout=1,
        max_members=max_members,
        transport=httpx.MockTransport(handler),
    )


def _directory(seen: list[httpx.Request]) -> Any:
    pages = {None: ([IDS[0], IDS[1], IDS[2]], "c1"), "c1": ([IDS[2], IDS[3], IDS[4]], None)}

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == f"/v1/lists/{LIST}":
            return httpx.Response(200, json={"id": str(LIST), "name": "Клиенты", "kind": "dynamic"})
        items, cursor = pages[request.url.params.get("cursor")]
        return httpx.Response(
            200, json={"items": [{"id": str(i)} for i in items], "next_cursor": cursor}
        )

    return handler


def test_pages_followed_with_the_callers_token() -> None:
    seen: list[httpx.Request] = []
    resolved = asyncio.run(_client(_directory(seen)).resolve(LIST, "Bearer caller-token"))
    assert (resolved.name, resolved.kind) == ("Клиенты", "dynamic")
    assert resolved.members == IDS  # the one seen on both pages once, in the order read
    assert [r.url.path for r in seen] == [
        f"/v1/lists/{LIST}",
        f"/v1/lists/{LIST}/members",
        f"/v1/lists/{LIST}/members",
    ]
    assert {r.headers["authorization"] for r in seen} == {"Bearer caller-token"}
    assert seen[1].url.params["limit"] == "500"
    assert seen[2].url.params["cursor"] == "c1"


def test_too_many_members_refused() -> None:
    with pytest.raises(RequestValidationError) as refused:
        asyncio.run(_client(_directory([]), max_members=4).resolve(LIST, "Bearer t"))
    assert refused.value.errors()[0]["type"] == "too_many_members"


@pytest.mark.parametrize("status", [403, 404])
def test_a_list_the_caller_cannot_see_is_unknown(status: int) -> None:
    client = _client(lambda _: httpx.Response(status, json={}))
    with pytest.raises(RequestValidationError) as refused:
        asyncio.run(client.resolve(LIST, "Bearer t"))
    assert refused.value.errors()[0]["type"] == "unknown_reference"


def test_directory_failing_or_unreachable_is_503() -> None:
    def unreachable(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    for handler in (unreachable, lambda _: httpx.Response(502)):
        with pytest.raises(ProblemError) as failed:
            asyncio.run(_client(handler).resolve(LIST, "Bearer t"))
        assert failed.value.status == 503
        assert failed.value.headers == {"Retry-After": "5"}
