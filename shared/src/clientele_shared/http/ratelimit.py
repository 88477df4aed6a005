"""A fixed-window request counter in Redis, shared by a service's replicas, and the 429 problem."""

from __future__ import annotations

from redis.asyncio import Redis

from clientele_shared.http.problems import ProblemError


async def count_in_window(redis: Redis, key: str, window_seconds: int) -> tuple[int, int]:
    """Count one more request under ``key``; the count in the current window and the seconds
    left of it (the window starts with its first request). Raises ``RedisError`` when Redis is
    unavailable: the caller decides whether to fail open or closed."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, window_seconds, nx=True)
        pipe.ttl(key)
        count, _, ttl = await pipe.execute()
    return int(count), int(ttl)


class TooManyRequests(ProblemError):
    """429 with ``Retry-After``."""

    def __init__(self, retry_after: int, detail: str, *, kind: str = "too-many-requests") -> None:
        super().__init__(
            429,
            "Too Many Requests",
            detail,
            kind=kind,
            headers={"Retry-After": str(max(retry_after, 1))},
        )
