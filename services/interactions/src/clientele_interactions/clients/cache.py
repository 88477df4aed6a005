"""The client summary's bodies in Redis, under the client's summary generation (see queries)."""

from __future__ import annotations

import uuid

from clientele_shared.observability import get_logger
from redis.asyncio import Redis
from redis.exceptions import RedisError

from clientele_interactions.clients.rules import SummaryBody

log = get_logger(__name__)


class SummaryCache:
    """Summary bodies in Redis; a Redis outage only costs speed, never an answer."""

    def __init__(self, redis: Redis, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl

    @staticmethod
    def key(organization_id: uuid.UUID, generation: int, last: int, upcoming: int) -> str:
        return f"interactions:summary:{organization_id}:{generation}:{last}:{upcoming}"

    async def get(self, key: str) -> SummaryBody | None:
        if self.ttl == 0:
            return None
        try:
            raw = await self.redis.get(key)
        except RedisError as exc:
            log.warning("summary cache unavailable", error=repr(exc))
            return None
        return SummaryBody.model_validate_json(raw) if raw else None

    async def put(self, key: str, body: SummaryBody) -> None:
        if self.ttl == 0:
            return
        try:
            await self.redis.set(key, body.model_dump_json(), ex=self.ttl)
        except RedisError as exc:
            log.warning("summary cache unavailable", error=repr(exc))
