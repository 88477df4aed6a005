"""Per-direction feeds: what an external subscriber limited to some directions may read (ADR 26).

The broker cannot filter records by content, so per-direction access is given by topics: every
event of a topic the ERP may read is also published, by its owner's outbox relay, to
``clientele.feed.<direction>`` for each direction it belongs to, and every state record to the
compacted ``clientele.feed.<direction>.state``. An ERP principal limited to some directions gets
Read ACLs on those feeds only (``deploy/k8s/kafka_manifests.py --erp-user``), so the broker
refuses it the rest.

A record that leaves a direction (its ``directions`` changed) is still sent to the feed of the
direction it left, so that subscriber sees it go, and a tombstone removes its snapshot from that
direction's state feed. A purged record's tombstone goes to the state feeds of its last
directions (carried in the outbox row's ``directions`` header).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.registry import DAY_MS, Registry, Topic
from clientele_shared.events.topics import ERP

FEED_PREFIX = "clientele.feed."
FEED_RETENTION_MS = 30 * DAY_MS
DIRECTIONS_HEADER = "directions"
LEFT_HEADER = "left_directions"


def feed_topic(direction: str, *, state: bool = False) -> Topic:
    """A direction's feed of change events, or (``state``) its compacted feed of snapshots."""
    if state:
        return Topic(
            f"{FEED_PREFIX}{direction}.state",
            "feeds",
            frozenset(),
            compacted=True,
            description=f"The latest snapshot of every record of direction {direction}.",
        )
    return Topic(
        f"{FEED_PREFIX}{direction}",
        "feeds",
        frozenset(),
        retention_ms=FEED_RETENTION_MS,
        description=f"The change events of direction {direction}.",
    )


def routing_headers(envelope: Envelope) -> dict[str, str]:
    """The outbox headers a relay routes by: the event's directions and those it left."""
    return route_headers(envelope.directions, envelope.payload)


def route_headers(directions: Sequence[str], payload: Mapping[str, Any]) -> dict[str, str]:
    """:func:`routing_headers` of an event's sorted directions and its payload as JSON."""
    headers: dict[str, str] = {}
    if directions:
        headers[DIRECTIONS_HEADER] = ",".join(directions)
    changes = payload.get("changes")
    change = changes.get("directions") if isinstance(changes, dict) else None
    if isinstance(change, dict):
        old, new = change.get("old") or [], change.get("new") or []
        left = [direction for direction in old if direction not in new]
        if left:
            headers[LEFT_HEADER] = ",".join(left)
    return headers


def _split(value: Any) -> list[str]:
    return [part for part in str(value).split(",") if part] if value else []


@dataclass(frozen=True)
class FeedRecord:
    topic: Topic
    key: str
    value: bytes | None


@dataclass
class DirectionFeeds:
    """Routes a relay's outbox rows to the feeds; creates a feed topic before its first record."""

    registry: Registry
    ensure: Callable[[Iterable[Topic]], Awaitable[object]]
    _sources: dict[str, bool] = field(default_factory=dict)
    _known: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._sources = {
            topic.name: topic.compacted
            for topic in self.registry.topics.values()
            if ERP in topic.consumers
        }

    def route(
        self, topic: str, key: str, value: bytes | None, headers: Mapping[str, Any]
    ) -> list[FeedRecord]:
        """The feed records of one outbox row (none for a topic the ERP may not read)."""
        if topic not in self._sources:
            return []
        directions = _split(headers.get(DIRECTIONS_HEADER))
        left = _split(headers.get(LEFT_HEADER))
        if self._sources[topic]:  # a snapshot, or a purged record's tombstone (value None)
            return [FeedRecord(feed_topic(each, state=True), key, value) for each in directions]
        every = dict.fromkeys([*directions, *left])  # an update's directions include the old
        records = [FeedRecord(feed_topic(each), key, value) for each in every]
        records += [FeedRecord(feed_topic(each, state=True), key, None) for each in left]
        return records

    async def prepare(self, records: Iterable[FeedRecord]) -> None:
        """Create the feed topics this process has not used yet (idempotent)."""
        new = {record.topic.name: record.topic for record in records}
        new = {name: topic for name, topic in new.items() if name not in self._known}
        if new:
            await self.ensure(new.values())
            self._known.update(new)
