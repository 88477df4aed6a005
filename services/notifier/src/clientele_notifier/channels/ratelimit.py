"""A per-recipient-domain rate limit in Redis: a counter per key and second, shared by replicas."""

from __future__ import annotations

import time

from clientele_shared.observability import get_logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

log = get_logger(__name__)


class DomainRateLimiter:
    def __init__(self, redis: Redis, per_second: int) -> None:
        self.redis = redis
        self.per_second = per_second

    async def acquire(self, key: str) -> float | None:
        """None when a delivery to ``key`` may go now, else the seconds to wait.

        Fails open: with Redis unavailable deliveries are not held back (the SMTP server's and
        receivers' own limits still apply).
        """
        now = time.time()
        window = int(now)
        counter = f"notifier:rate:{key}:{window}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incr(counter)
                pipe.expire(counter, 2)
                count, _ = await pipe.execute()
        except RedisError as exc:
            log.warning("rate limiter unavailable, not limiting", error=repr(exc))
            return None
        if int(count) <= self.per_second:
            return None
        return window + 1 - now
