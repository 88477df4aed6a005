"""Refuse text PostgreSQL cannot store or Python cannot parse, before any handler sees it.

PostgreSQL refuses U+0000 in text and UTF-8 has no lone surrogates, so such a character in a
path, a query value or a JSON string would reach the database and fail there as a 500. JSON
nested deeper than the parser's recursion limit would do the same. One guard for every service
answers each with a 422 problem instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clientele_shared.http.middleware import send_problem

MAX_JSON_DEPTH = 200
"""Deeper JSON is refused: no request of the API nests more than a handful of levels."""

_SUSPECT = re.compile(rb"\x00|\\u0000|\\u[dD][89a-fA-F]")
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def bad_text(value: str) -> str | None:
    """Why a string cannot be stored as text, or None."""
    if "\x00" in value:
        return "contains a NUL character (U+0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone surrogate (not valid Unicode)"
    return None


def _strings(value: Any, location: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    """Every key and string of a parsed JSON document, with where it is."""
    if isinstance(value, str):
        yield location, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield location, key
            yield from _strings(item, (*location, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*location, str(index)))


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether brackets outside strings nest deeper than `limit`.

    Strings are cut out with C-speed byte operations first (escaped backslashes and quotes, then
    every quoted run), so the Python loop sees only the brackets.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    unquoted = _STRING.sub(b"", body.replace(b"\\\\", b"").replace(b'\\"', b""))
    depth = 0
    for byte in unquoted.translate(None, _NOT_BRACKETS):
        depth += 1 if byte in (0x5B, 0x7B) else -1
        if depth > limit:
            return True
    return False


def json_body_problem(body: bytes) -> Error | None:
    """Why a JSON body is refused, or None (a malformed body is left to the API's parser)."""
    if json_depth_exceeds(body):
        return Error(("body",), f"nests deeper than {MAX_JSON_DEPTH} levels", "json_too_deep")
    if not _SUSPECT.search(body):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    for location, text in _strings(document, ("body",)):
        if (why := bad_text(text)) is not None:
            return Error(location, why, "text_not_storable")
    return None


@dataclass(frozen=True)
class Error:
    """One refused value: where, why, and a machine-readable type (as validation errors have)."""

    location: tuple[str, ...]
    message: str
    type: str


async def _refuse(send: Send, scope: Scope, error: Error) -> None:
    await send_problem(
        send,
        scope,
        422,
        "Validation Failed",
        f"The request is not valid ({' '.join(error.location)}: {error.message}); "
        "nothing was changed.",
        kind="validation-failed",
        extensions={
            "errors": [
                {"location": list(error.location), "message": error.message, "type": error.type}
            ]
        },
    )


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return False


class TextGuard:
    """422 for NUL, lone surrogates (path, query, JSON body) and over-deep JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (error := self._url_problem(scope)) is not None:
            await _refuse(send, scope, error)
            return
        if not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if (error := json_body_problem(body)) is not None:
            await _refuse(send, scope, error)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)

    @staticmethod
    def _url_problem(scope: Scope) -> Error | None:
        if (why := bad_text(scope.get("path", ""))) is not None:
            return Error(("path",), why, "text_not_storable")
        query = scope.get("query_string", b"").decode("latin-1")
        if "%00" in query or "\x00" in query:
            for name, value in parse_qsl(query, keep_blank_values=True):
                for text in (name, value):
                    if (why := bad_text(text)) is not None:
                        return Error(("query", name), why, "text_not_storable")
        return None


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    """A receive callable that gives `messages` first, then defers to `then`."""
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is None:
            return {"type": "http.disconnect"}
        return await then()

    return receive
