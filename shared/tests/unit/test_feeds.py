"""Routing of outbox rows to per-direction feeds (ADR 26)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from clientele_shared.events.catalog import (
    EMPLOYEES,
    ORGANIZATIONS,
    ORGANIZATIONS_STATE,
    REGISTRY,
)
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.feeds import DirectionFeeds, feed_topic, routing_headers
from clientele_shared.events.registry import Topic


async def _ensure(topics: Iterable[Topic]) -> None:
    created.extend(topic.name for topic in topics)


created: list[str] = []
FEEDS = DirectionFeeds(REGISTRY, _ensure)


def _envelope(directions: tuple[str, ...], payload: dict[str, object]) -> Envelope:
    return Envelope(
        type="directory.organization.updated",
        schema_version=1,
        producer="directory",
        correlation_id="c",
        aggregate_id="org-1",
        directions=directions,
        payload=payload,
    )


def test_headers_carry_the_directions_and_those_left() -> None:
    moved = _envelope(
        ("north", "south"),
        {"changes": {"directions": {"old": ["north", "east"], "new": ["south", "east"]}}},
    )
    assert routing_headers(moved) == {"directions": "north,south", "left_directions": "north"}
    assert routing_headers(_envelope((), {"changes": {"legal_name": {"old": "a"}}})) == {}


def test_a_change_goes_to_every_direction_and_a_leaver_gets_a_tombstone() -> None:
    headers = {"directions": "north,south", "left_directions": "north"}
    records = FEEDS.route(ORGANIZATIONS, "org-1", b"{}", headers)
    assert [(r.topic.name, r.value) for r in records] == [
        ("clientele.feed.north", b"{}"),
        ("clientele.feed.south", b"{}"),
        ("clientele.feed.north.state", None),
    ]


def test_a_snapshot_or_a_purge_goes_to_the_state_feeds_of_its_directions() -> None:
    snapshot = FEEDS.route(ORGANIZATIONS_STATE, "org-1", b"{}", {"directions": "south"})
    assert [(r.topic.name, r.value) for r in snapshot] == [("clientele.feed.south.state", b"{}")]
    purge = FEEDS.route(ORGANIZATIONS_STATE, "org-1", None, {"directions": "south"})
    assert [(r.topic.name, r.value) for r in purge] == [("clientele.feed.south.state", None)]


def test_topics_the_erp_may_not_read_and_records_without_directions_stay_out() -> None:
    assert FEEDS.route(EMPLOYEES, "e-1", b"{}", {"directions": "north"}) == []
    assert FEEDS.route(ORGANIZATIONS, "org-1", b"{}", {}) == []


def test_feed_topics_are_created_once_per_process_with_their_configuration() -> None:
    records = FEEDS.route(ORGANIZATIONS, "org-1", b"{}", {"directions": "west"})
    asyncio.run(FEEDS.prepare(records))
    asyncio.run(FEEDS.prepare(records))
    assert created.count("clientele.feed.west") == 1
    assert feed_topic("west", state=True).config()["cleanup.policy"] == "compact"
    assert feed_topic("west").config().get("cleanup.policy") != "compact"
