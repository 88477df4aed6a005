"""Live in-app notifications: one Redis channel for all of them, one subscription per process.

A worker publishes each stored batch of notifications as one message; every notifier process
subscribes once and hands each notification to the Server-Sent Event streams of its recipient
open in that process. Best effort: a notification missed while Redis or the subscription was
down is in the inbox, and a reconnecting stream catches up from its Last-Event-ID.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from clientele_shared.observability import get_logger
from redis.asyncio import Redis
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

log = get_logger(__name__)

CHANNEL = "notifier:inbox"
PENDING = "clientele_notifier_inbox"
"""Where a session keeps the notifications to publish when it commits."""
STREAM_BUFFER = 1000
"""Notifications a slow stream may fall behind by before new ones are dropped for it."""


def _discard(session: Session) -> None:
    session.info.pop(PENDING, None)


class InboxHub:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._streams: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self._publishing: set[asyncio.Task[None]] = set()

    async def publish(self, notifications: list[dict[str, Any]]) -> None:
        """Send new notifications (JSON-ready dicts with a ``recipient``) to every process."""
        if not notifications:
            return
        try:
            await self.redis.publish(CHANNEL, json.dumps(notifications, ensure_ascii=False))
        except Exception as exc:
            log.warning("could not publish to the live inbox streams", error=repr(exc))

    def publish_after_commit(
        self, session: AsyncSession, notifications: list[dict[str, Any]]
    ) -> None:
        """Publish the notifications once the session's transaction commits (never those of a
        transaction that rolls back)."""
        if not notifications:
            return
        pending: list[dict[str, Any]] | None = session.info.get(PENDING)
        if pending is None:
            pending = session.info[PENDING] = []
            sync = session.sync_session
            event.listen(sync, "after_commit", self._committed)
            event.listen(sync, "after_rollback", _discard)
        pending.extend(notifications)

    def _committed(self, session: Session) -> None:
        pending: list[dict[str, Any]] = session.info.pop(PENDING, [])
        if pending:  # runs in the event loop's thread (SQLAlchemy's greenlet)
            task = asyncio.get_running_loop().create_task(self.publish(pending))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    def attach(self, employee_id: str) -> asyncio.Queue[dict[str, Any]]:
        """A queue that receives the employee's new notifications until detached."""
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(STREAM_BUFFER)
        self._streams.setdefault(employee_id, set()).add(queue)
        return queue

    def detach(self, employee_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        queues = self._streams.get(employee_id)
        if queues is not None:
            queues.discard(queue)
            if not queues:
                del self._streams[employee_id]

    def dispatch(self, notifications: list[dict[str, Any]]) -> None:
        """Hand each notification to its recipient's open streams in this process."""
        for item in notifications:
            for queue in self._streams.get(item["recipient"], ()):
                try:
                    queue.put_nowait(item)
                except asyncio.QueueFull:
                    log.warning("a live inbox stream fell behind; dropped a notification")

    async def run(self) -> None:
        """Listen until cancelled, subscribing again after a lost connection."""
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(CHANNEL)
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5)
                    if message is not None:
                        self.dispatch(json.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("live inbox subscription lost, subscribing again", error=repr(exc))
                await asyncio.sleep(1.0)
            finally:
                await pubsub.aclose()  # type: ignore[no-untyped-call]
