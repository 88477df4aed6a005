"""One check, for each service's tests, that a create endpoint honours Idempotency-Key (ADR 22)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from clientele_shared.db import async_url
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

Body = dict[str, Any]


def scalar(database_url: str, sql: str, **params: Any) -> Any:
    """One value from a service's database (to count what a request created)."""

    async def look() -> Any:
        engine = create_async_engine(async_url(database_url))
        try:
            async with engine.connect() as conn:
                return await conn.scalar(text(sql), params)
        finally:
            await engine.dispose()

    return asyncio.run(look())


@dataclass(frozen=True)
class IdempotentCreate:
    """A create endpoint under test.

    ``new_body()`` makes a body that creates a new record; ``count(body)`` says how many records
    that body created; ``refuses_duplicates``: the service itself answers 409 to a second record
    like the first (a unique name), so without the key's protection the second is a 409.
    """

    url: str
    caller: dict[str, str]
    other_caller: dict[str, str]
    new_body: Callable[[], Body]
    count: Callable[[Body], int]
    refuses_duplicates: bool = False


def _keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def _replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("idempotent-replayed") == "true")


def check_idempotent_create(case: IdempotentCreate) -> None:
    """Same key twice, another body, another caller, two at once, and no key at all."""
    body, key = case.new_body(), f"retry-{uuid.uuid4()}"
    first = httpx.post(case.url, json=body, headers=_keyed(case.caller, key), timeout=30)
    assert first.is_success, first.text
    assert not _replayed(first)
    again = httpx.post(case.url, json=body, headers=_keyed(case.caller, key), timeout=30)
    assert _replayed(again), again.text
    assert (again.status_code, again.content) == (first.status_code, first.content)
    for header in ("content-type", "etag", "location"):
        assert again.headers.get(header) == first.headers.get(header), header
    assert case.count(body) == 1

    reused = httpx.post(case.url, json=case.new_body(), headers=_keyed(case.caller, key))
    assert reused.status_code == 422, reused.text
    assert reused.headers["content-type"] == "application/problem+json"
    assert reused.json()["type"].endswith("/idempotency-key-reused")

    theirs = httpx.post(case.url, json=body, headers=_keyed(case.other_caller, key), timeout=30)
    assert not _replayed(theirs), "another caller's key is another key"
    if case.refuses_duplicates:
        assert theirs.status_code == 409, theirs.text
        assert case.count(body) == 1
    else:
        assert theirs.is_success, theirs.text
        assert theirs.content != first.content
        assert case.count(body) == 2

    together, key = case.new_body(), f"together-{uuid.uuid4()}"
    answers = asyncio.run(_at_once(case.url, together, _keyed(case.caller, key), 4))
    assert case.count(together) == 1
    created = [answer for answer in answers if answer.is_success and not _replayed(answer)]
    assert len(created) == 1, [answer.status_code for answer in answers]
    for answer in answers:
        if answer is created[0]:
            continue
        if answer.status_code == 409:
            assert answer.headers["retry-after"], answer.text
            assert answer.json()["type"].endswith("/idempotency-key-in-progress")
        else:
            assert _replayed(answer), answer.text
            assert answer.content == created[0].content

    plain = case.new_body()
    answers = [httpx.post(case.url, json=plain, headers=case.caller, timeout=30) for _ in "12"]
    assert not any(_replayed(answer) for answer in answers)
    if case.refuses_duplicates:
        assert [answer.status_code for answer in answers] == [201, 409]
        assert case.count(plain) == 1
    else:
        assert all(answer.is_success for answer in answers)
        assert case.count(plain) == 2


async def _at_once(url: str, body: Body, headers: dict[str, str], n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=30) as client:
        return list(
            await asyncio.gather(*(client.post(url, json=body, headers=headers) for _ in range(n)))
        )
