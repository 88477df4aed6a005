"""ASGI middleware: request size limit, correlation id, request metrics and access logs."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clientele_shared.http.problems import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, unhandled_problem
from clientele_shared.observability import HTTP_LATENCY, correlation_id_var, get_logger

CORRELATION_HEADER = "x-correlation-id"
log = get_logger(__name__)


async def send_problem(
    send: Send,
    scope: Scope,
    status: int,
    title: str,
    detail: str,
    *,
    kind: str | None = None,
    extensions: Mapping[str, Any] | None = None,
    retry_after: int | None = None,
) -> None:
    """Answer with a problem details document straight from ASGI middleware."""
    body = json.dumps(
        {
            "type": PROBLEM_BASE + (kind or title.lower().replace(" ", "-")),
            "title": title,
            "status": status,
            "detail": detail,
            "instance": scope.get("path", ""),
            **(extensions or {}),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *([(b"retry-after", str(retry_after).encode())] if retry_after is not None else []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Refuse request bodies above a limit with 413, whether declared or streamed.

    `larger` raises the limit for the paths matching a regular expression (uploads), so the
    rest of the API keeps the small default.
    """

    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), limit) for pattern, limit in (larger or {}).items()]

    def limit_for(self, path: str) -> int:
        for pattern, limit in self.larger:
            if pattern.fullmatch(path):
                return limit
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = self.limit_for(scope.get("path", ""))
        detail = f"The request body exceeds {max_bytes} bytes."
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await send_problem(send, scope, 413, "Content Too Large", detail)
                return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes and not refused:
                    refused = True
                    if not started:
                        await send_problem(send, scope, 413, "Content Too Large", detail)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, limited_receive, guarded_send)


class CorrelationAndMetrics:
    """Bind X-Correlation-ID (or a new one) to the context, echo it, time and log each request.

    An error that escapes the app before its answer started is answered here (see
    `unhandled_problem`: 503 for an unavailable dependency, else 500), with the correlation id.
    """

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers", ())).get(CORRELATION_HEADER.encode(), b"").decode()
        correlation_id = incoming[:128] if incoming.isprintable() and incoming else None
        correlation_id = correlation_id or uuid.uuid4().hex
        token = correlation_id_var.set(correlation_id)
        status = 500
        started = time.perf_counter()
        answering = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, answering
            if message["type"] == "http.response.start":
                answering = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((CORRELATION_HEADER.encode(), correlation_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            if answering:
                raise
            await unhandled_problem(Request(scope), exc)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            HTTP_LATENCY.labels(self.service, scope["method"], path, str(status)).observe(elapsed)
            if not path.startswith(("/health", "/metrics")):
                log.info(
                    "http request",
                    method=scope["method"],
                    route=path,
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )
            correlation_id_var.reset(token)
