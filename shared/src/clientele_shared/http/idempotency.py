"""The Idempotency-Key header (draft-ietf-httpapi-idempotency-key-header): a retried write is
answered once.

A POST or PATCH that carries ``Idempotency-Key`` from a verified caller reserves the key in
Redis (``SET NX`` with a lock renewed while the request runs), runs, and its answer is kept for
``IDEMPOTENCY_TTL_SECONDS``. The same caller sending the same key to the same method and path
again gets that answer back with ``Idempotent-Replayed: true`` (the same body) or a 422 (another
body); while the first is still running, a 409 with ``Retry-After``. Requests without the header
are not touched. Why each choice: ADR 0022.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from prometheus_client import Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from clientele_shared.auth.principal import Principal
from clientele_shared.http.middleware import send_problem
from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import get_logger

log = get_logger(__name__)

HEADER: Final = b"idempotency-key"
REPLAYED_HEADER: Final = b"idempotent-replayed"
METHODS: Final = frozenset({"POST", "PATCH"})
MAX_KEY_LENGTH: Final = 255

KEPT_HEADERS: Final = frozenset({b"content-type", b"etag", b"location"})
"""Response headers kept with an answer and given back with its replay."""

STORED_CLIENT_ERRORS: Final = frozenset({400, 413, 415, 422})
"""Client errors that the same body gets again whenever it is sent; other 4xx (401, 403, 404,
409, 412, 428, 429, ...) may change with time, so they release the key like a 5xx."""

LOCK_SECONDS: Final = 30
"""How long a reservation lives unless renewed; renewed every third of it while the request
runs, so a process that died frees its keys within this time."""

REDIS_TIMEOUT: Final = 2.0
"""Seconds a Redis call may take before the request is answered 503."""

PREFETCH_BYTES: Final = 1_048_576
"""Request bodies up to this size are read before the app runs (so a body the app never reads,
an empty POST for one, is fingerprinted too); larger ones are hashed as the app reads them."""

RETRY_AFTER_SECONDS: Final = 1

IDEMPOTENCY_REQUESTS = Counter(
    "clientele_idempotency_requests_total",
    "Requests carrying Idempotency-Key by outcome (stored, replayed, in_progress, reused, "
    "not_stored, invalid, unavailable)",
    ["service", "outcome"],
)

_PENDING: Final = b"pending:"
_BOUNDARY = re.compile(r"""boundary\s*=\s*(?:"([^"]+)"|([^\s;]+))""", re.IGNORECASE)
_BOUNDARY_MARK: Final = b"\x00boundary\x00"

# KEYS[1]: the key; ARGV[1]: the owner's pending value; ARGV[2]: the answer; ARGV[3]: seconds.
_STORE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


class InvalidKeyError(ProblemError):
    """400: the Idempotency-Key header is not 1 to 255 printable ASCII characters."""

    def __init__(self, detail: str) -> None:
        super().__init__(400, "Invalid Idempotency Key", detail, kind="invalid-idempotency-key")


def parse_key(values: list[bytes]) -> str:
    """The key of the Idempotency-Key header values; InvalidKeyError when it is not usable.

    The draft sends the key as a structured-field string (``"8e03..."``): the quotes are
    dropped, so a quoted and a bare key name the same thing.
    """
    if len(values) != 1:
        raise InvalidKeyError("Send exactly one Idempotency-Key header.")
    raw = values[0].strip()
    if len(raw) >= 2 and raw.startswith(b'"') and raw.endswith(b'"'):
        raw = raw[1:-1]
    if not 1 <= len(raw) <= MAX_KEY_LENGTH:
        raise InvalidKeyError(f"The Idempotency-Key must be 1 to {MAX_KEY_LENGTH} characters.")
    if any(byte < 0x20 or byte > 0x7E for byte in raw):
        raise InvalidKeyError("The Idempotency-Key must be printable ASCII.")
    return raw.decode("ascii")


class Fingerprint:
    """SHA-256 of what makes two requests the same: content type, query, If-Match and body.

    A multipart body's boundary is left out (of the content type and of the body), since a
    client library draws a new one for each request it builds, retries included.
    """

    def __init__(self, *, content_type: bytes, query: bytes, if_match: bytes) -> None:
        text = content_type.decode("latin-1")
        found = _BOUNDARY.search(text)
        self._delimiter: bytes | None = None
        if found:
            self._delimiter = b"--" + (found.group(1) or found.group(2)).encode("latin-1")
            text = text[: found.start()] + text[found.end() :]
        normalised = ";".join(part.strip().lower() for part in text.split(";") if part.strip())
        self._hash = hashlib.sha256()
        for part in (normalised.encode("latin-1"), query, if_match.strip()):
            self._hash.update(len(part).to_bytes(4, "big") + part)
        self._tail = b""

    def update(self, chunk: bytes) -> None:
        """Add the next piece of the body."""
        if self._delimiter is None:
            self._hash.update(chunk)
            return
        *whole, last = (self._tail + chunk).split(self._delimiter)
        for segment in whole:
            self._hash.update(segment)
            self._hash.update(_BOUNDARY_MARK)
        keep = len(self._delimiter) - 1
        self._hash.update(last[:-keep] if len(last) > keep else b"")
        self._tail = last[-keep:] if len(last) > keep else last

    def hexdigest(self) -> str:
        """The fingerprint of the body added so far."""
        final = self._hash.copy()
        final.update(self._tail)
        return final.hexdigest()


def storage_key(service: str, subject: str, method: str, path: str, key: str) -> str:
    """The Redis key of one caller's key for one method and path (hashed: bounded length)."""
    scope = "\x00".join((subject, method, path, key)).encode()
    return f"idempotency:{service}:{hashlib.sha256(scope).hexdigest()}"


def storable(status: int) -> bool:
    """Whether an answer is kept for replay (else the key is released for a retry)."""
    return 200 <= status < 300 or status in STORED_CLIENT_ERRORS


@dataclass
class _Answer:
    """An answer as it went out: status, the kept headers, the body (until too large)."""

    status: int = 0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    complete: bool = False
    too_large: bool = False

    def encode(self, fingerprint: str) -> bytes:
        return json.dumps(
            {
                "fingerprint": fingerprint,
                "status": self.status,
                "headers": [
                    [name.decode("latin-1"), value.decode("latin-1")]
                    for name, value in self.headers
                ],
                "body": base64.b64encode(bytes(self.body)).decode(),
            }
        ).encode()


@dataclass(frozen=True)
class _Stored:
    fingerprint: str
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    @classmethod
    def decode(cls, raw: bytes) -> _Stored:
        data: dict[str, Any] = json.loads(raw)
        return cls(
            fingerprint=data["fingerprint"],
            status=int(data["status"]),
            headers=[
                (name.encode("latin-1"), value.encode("latin-1")) for name, value in data["headers"]
            ],
            body=base64.b64decode(data["body"]),
        )


class _Body:
    """The request body as the app reads it: prefetched messages first, then the rest, each
    piece added to the fingerprint."""

    def __init__(self, receive: Receive, fingerprint: Fingerprint) -> None:
        self._receive = receive
        self.fingerprint = fingerprint
        self._prefetched: list[Message] = []
        self.complete = False
        self.disconnected = False

    async def _next(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.fingerprint.update(message.get("body", b""))
            self.complete = not message.get("more_body", False)
        elif message["type"] == "http.disconnect":
            self.disconnected = True
        return message

    async def prefetch(self, limit: int) -> None:
        """Read the body before the app runs until it ends or passes ``limit`` bytes."""
        size = 0
        while not (self.complete or self.disconnected) and size <= limit:
            message = await self._next()
            self._prefetched.append(message)
            size += len(message.get("body", b""))

    async def drain(self) -> None:
        """Read the rest (hashing it, keeping nothing) to learn the whole body's fingerprint."""
        while not (self.complete or self.disconnected):
            await self._next()

    async def receive(self) -> Message:
        if self._prefetched:
            return self._prefetched.pop(0)
        if self.complete or self.disconnected:
            return await self._receive()
        return await self._next()


SubjectOf = Callable[[str], Awaitable[Principal]]


class IdempotencyKeys:
    """ASGI middleware answering a retried POST/PATCH with its first answer (see module doc).

    ``verify`` turns a bearer token into a principal exactly as the app does; an absent or
    refused token leaves the request to the app (which answers 401), so a stored answer is only
    ever given to the caller it was given to first.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        redis: Redis,
        verify: SubjectOf,
        ttl_seconds: int,
        max_response_bytes: int,
    ) -> None:
        self.app = app
        self.service = service
        self.redis = redis
        self.verify = verify
        self.ttl_seconds = ttl_seconds
        self.max_response_bytes = max_response_bytes

    def _count(self, outcome: str) -> None:
        IDEMPOTENCY_REQUESTS.labels(self.service, outcome).inc()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in METHODS:
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        values = [value for name, value in headers if name == HEADER]
        if not values:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(values)
        except InvalidKeyError as exc:
            self._count("invalid")
            await send_problem(send, scope, exc.status, exc.title, exc.detail or "", kind=exc.kind)
            return
        principal = await self._caller(headers)
        if principal is None:
            await self.app(scope, receive, send)
            return
        first_of = dict(reversed(headers))
        body = _Body(
            receive,
            Fingerprint(
                content_type=first_of.get(b"content-type", b""),
                query=scope.get("query_string", b""),
                if_match=first_of.get(b"if-match", b""),
            ),
        )
        await body.prefetch(PREFETCH_BYTES)
        if body.disconnected:  # the client left, or the body was refused as too large
            await self.app(scope, body.receive, send)
            return
        subject = f"{principal.kind}:{principal.subject}"
        redis_key = storage_key(self.service, subject, scope["method"], scope["path"], key)
        owner = _PENDING + uuid.uuid4().hex.encode()
        try:
            stored = await self._reserve(redis_key, owner)
        except (RedisError, OSError, TimeoutError) as exc:
            self._count("unavailable")
            log.warning("idempotency store unavailable", error=type(exc).__name__)
            await send_problem(
                send,
                scope,
                503,
                "Idempotency Unavailable",
                "Requests with an Idempotency-Key cannot be accepted now; retry with the same key.",
                kind="idempotency-unavailable",
                retry_after=5,
            )
            return
        if stored is None:
            await self._run(scope, body, send, redis_key, owner)
        elif stored.startswith(_PENDING):
            self._count("in_progress")
            await send_problem(
                send,
                scope,
                409,
                "Request In Progress",
                "A request with this Idempotency-Key is still being processed; retry later.",
                kind="idempotency-key-in-progress",
                retry_after=RETRY_AFTER_SECONDS,
            )
        else:
            await self._replay(scope, body, send, _Stored.decode(stored))

    async def _caller(self, headers: list[tuple[bytes, bytes]]) -> Principal | None:
        """The verified principal of the bearer token, or None (the app will answer 401)."""
        authorization = next((value for name, value in headers if name == b"authorization"), b"")
        scheme, _, token = authorization.decode("latin-1").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            return await self.verify(token.strip())
        except ProblemError:
            return None

    async def _reserve(self, redis_key: str, owner: bytes) -> bytes | None:
        """Reserve the key (None) or return what holds it: a pending marker or an answer."""
        async with asyncio.timeout(REDIS_TIMEOUT):
            for _ in range(3):
                if await self.redis.set(redis_key, owner, nx=True, ex=LOCK_SECONDS):
                    return None
                current = await self.redis.get(redis_key)
                if current is not None:
                    return current if isinstance(current, bytes) else current.encode()
        raise TimeoutError("the key kept expiring between SET NX and GET")

    async def _run(
        self, scope: Scope, body: _Body, send: Send, redis_key: str, owner: bytes
    ) -> None:
        answer = _Answer()

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer.status = message["status"]
                answer.headers = [
                    (name.lower(), value)
                    for name, value in message.get("headers", [])
                    if name.lower() in KEPT_HEADERS
                ]
            elif message["type"] == "http.response.body" and not answer.too_large:
                answer.body += message.get("body", b"")
                answer.too_large = len(answer.body) > self.max_response_bytes
                if answer.too_large:
                    answer.body = bytearray()
                answer.complete = not message.get("more_body", False)
            await send(message)

        kept = False
        try:
            async with self._renewing(redis_key, owner):
                await self.app(scope, body.receive, capture)
            kept = await self._keep(scope, body, answer, redis_key, owner)
        finally:
            if not kept:
                await self._release(redis_key, owner)

    async def _keep(
        self, scope: Scope, body: _Body, answer: _Answer, redis_key: str, owner: bytes
    ) -> bool:
        """Store the answer when it may be replayed; False when the key is to be released."""
        if not storable(answer.status):
            self._count("not_stored")
            return False
        reason = None
        if answer.too_large:
            reason = f"the answer exceeds {self.max_response_bytes} bytes"
        elif not body.complete:
            reason = "the answer was given before the whole request body was read"
        elif not answer.complete:
            reason = "the answer did not complete"
        if reason:
            self._count("not_stored")
            log.warning(
                "idempotent answer not stored, key released",
                path=scope["path"],
                status=answer.status,
                reason=reason,
            )
            return False
        record = answer.encode(body.fingerprint.hexdigest())
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                await self.redis.eval(_STORE, 1, redis_key, owner, record, self.ttl_seconds)
        except (RedisError, OSError, TimeoutError) as exc:
            self._count("unavailable")
            log.error(
                "idempotent answer could not be stored; the key frees itself",
                path=scope["path"],
                error=type(exc).__name__,
                lock_seconds=LOCK_SECONDS,
            )
            return True
        self._count("stored")
        return True

    async def _release(self, redis_key: str, owner: bytes) -> None:
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                await self.redis.eval(_RELEASE, 1, redis_key, owner)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("idempotency key not released; it frees itself", error=type(exc).__name__)

    @contextlib.asynccontextmanager
    async def _renewing(self, redis_key: str, owner: bytes) -> AsyncIterator[None]:
        """Keep the reservation alive while the request runs (an import takes minutes)."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(LOCK_SECONDS / 3)
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(REDIS_TIMEOUT):
                        await self.redis.eval(_RENEW, 1, redis_key, owner, LOCK_SECONDS)

        task = asyncio.create_task(renew(), name="idempotency-renew")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _replay(self, scope: Scope, body: _Body, send: Send, stored: _Stored) -> None:
        await body.drain()
        if body.disconnected:
            return
        if body.fingerprint.hexdigest() != stored.fingerprint:
            self._count("reused")
            await send_problem(
                send,
                scope,
                422,
                "Idempotency Key Reused",
                "This Idempotency-Key was used for a different request; use a new key.",
                kind="idempotency-key-reused",
            )
            return
        self._count("replayed")
        await send(
            {
                "type": "http.response.start",
                "status": stored.status,
                "headers": [
                    *stored.headers,
                    (b"content-length", str(len(stored.body)).encode()),
                    (REPLAYED_HEADER, b"true"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": stored.body})
