"""Topics, their owners and consumers, and every event type with its payload schema."""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from clientele_shared.events.envelope import Envelope


class GrantError(RuntimeError):
    """A service tried to publish or consume outside its topic grants."""


class UnknownEventError(ValueError):
    """An event whose type, version or payload the registry does not accept."""


DAY_MS = 24 * 60 * 60 * 1000
DEAD_LETTER_RETENTION_MS = 30 * DAY_MS
"""Dead letters wait for a human: keep them 30 days rather than the broker default."""


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: one owning (publishing) service and the services allowed to consume it.

    ``compacted``: a state topic (ADR 18): the latest record per key is kept for good
    (``cleanup.policy=compact``), older ones only ``min_compaction_lag_ms`` at least, a tombstone
    ``delete_retention_ms``. Otherwise records are kept ``retention_ms`` (None: the broker's).
    """

    name: str
    owner: str
    consumers: frozenset[str]
    partitions: int = 3
    description: str = ""
    compacted: bool = False
    retention_ms: int | None = None
    min_compaction_lag_ms: int = 60_000
    delete_retention_ms: int = 7 * DAY_MS

    @property
    def dead_letter(self) -> str:
        """The dead-letter topic of this topic; any of its consumers may publish there."""
        return f"{self.name}.dlt"

    def dead_letter_topic(self) -> Topic:
        """The dead-letter topic as a topic of its own (never compacted: kept by time)."""
        return Topic(
            self.dead_letter,
            self.owner,
            self.consumers,
            self.partitions,
            retention_ms=DEAD_LETTER_RETENTION_MS,
        )

    def config(self) -> dict[str, str | int]:
        """The topic-level Kafka configuration (for the admin client and Strimzi alike)."""
        config: dict[str, str | int] = {}
        if self.compacted:
            config["cleanup.policy"] = "compact"
            config["min.compaction.lag.ms"] = self.min_compaction_lag_ms
            config["delete.retention.ms"] = self.delete_retention_ms
        elif self.retention_ms is not None:
            config["retention.ms"] = self.retention_ms
        return config


@dataclass(frozen=True)
class EventSpec:
    """One event type at one schema version, published on one topic."""

    name: str
    version: int
    topic: str
    payload: type[BaseModel]
    description: str = ""


@dataclass
class Registry:
    """The single source of truth for topics, grants and event schemas (built once, then read)."""

    topics: dict[str, Topic] = field(default_factory=dict)
    events: dict[tuple[str, int], EventSpec] = field(default_factory=dict)
    _latest: dict[str, EventSpec] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, topics: Iterable[Topic], events: Iterable[EventSpec]) -> Registry:
        registry = cls()
        for topic in topics:
            registry.topics[topic.name] = topic
        for spec in events:
            if spec.topic not in registry.topics:
                raise ValueError(f"event {spec.name} v{spec.version}: unknown topic {spec.topic}")
            registry.events[(spec.name, spec.version)] = spec
        return registry

    def topic(self, name: str) -> Topic:
        try:
            return self.topics[name]
        except KeyError:
            raise GrantError(f"topic {name!r} is not in the topic registry") from None

    def spec(self, event_type: str, version: int) -> EventSpec:
        try:
            return self.events[(event_type, version)]
        except KeyError:
            raise UnknownEventError(
                f"event type {event_type!r} version {version} is not registered"
            ) from None

    def latest(self, event_type: str) -> EventSpec:
        """The newest version of an event type (looked up once per type: every publish asks)."""
        if (known := self._latest.get(event_type)) is not None:
            return known
        versions = [spec for (name, _), spec in self.events.items() if name == event_type]
        if not versions:
            raise UnknownEventError(f"event type {event_type!r} is not registered")
        newest = self._latest[event_type] = max(versions, key=lambda spec: spec.version)
        return newest

    def spec_for(self, event_type: str, payload: BaseModel) -> EventSpec:
        """The version of an event type whose schema is the payload's class (the newest one
        when several accept it): an owner that still builds an older payload publishes that."""
        versions = sorted(
            (spec for (name, _), spec in self.events.items() if name == event_type),
            key=lambda spec: spec.version,
            reverse=True,
        )
        for spec in versions:
            if type(payload) is spec.payload:
                return spec
        for spec in versions:
            if isinstance(payload, spec.payload):
                return spec
        raise UnknownEventError(f"no version of {event_type!r} takes a {type(payload).__name__}")

    def check_publish(self, service: str, topic_name: str) -> Topic:
        topic = self.topic(topic_name)
        if topic.owner != service:
            raise GrantError(
                f"service {service!r} may not publish to topic {topic_name!r} "
                f"(owned by {topic.owner!r})"
            )
        return topic

    def check_consume(self, service: str, topic_name: str) -> Topic:
        topic = self.topic(topic_name)
        if service not in topic.consumers:
            raise GrantError(
                f"service {service!r} may not consume topic {topic_name!r} "
                f"(granted to {sorted(topic.consumers)})"
            )
        return topic

    def check_grants(
        self, service: str, *, publishes: Iterable[str] = (), consumes: Iterable[str] = ()
    ) -> None:
        """Fail at start-up when a service is wired outside its grants."""
        for name in publishes:
            self.check_publish(service, name)
        for name in consumes:
            self.check_consume(service, name)

    def published_by(self, service: str) -> list[Topic]:
        return [topic for topic in self.topics.values() if topic.owner == service]

    def validate(self, envelope: Envelope) -> BaseModel:
        """Return the typed payload of an envelope or raise UnknownEventError.

        A tolerant reader: fields this version of the code does not know are ignored, at any
        depth (a producer may add optional fields to a published version, docs/integration.md);
        payload models stay strict for what this code produces.
        """
        spec = self.spec(envelope.type, envelope.schema_version)
        try:
            return spec.payload.model_validate(envelope.payload)
        except ValidationError as exc:
            known = _without_unknown_fields(envelope.payload, exc)
            if known is not None:
                try:
                    return spec.payload.model_validate(known)
                except ValidationError as again:
                    exc = again
            raise UnknownEventError(
                f"event {envelope.type} v{envelope.schema_version} has an invalid payload: "
                f"{exc.error_count()} error(s): {exc.errors(include_url=False)}"
            ) from exc


def _without_unknown_fields(
    payload: dict[str, Any], error: ValidationError
) -> dict[str, Any] | None:
    """The payload without the fields a strict model refused as unknown; None when something
    else is wrong too (or nothing was unknown)."""
    problems = error.errors(include_url=False)
    if not problems or any(problem["type"] != "extra_forbidden" for problem in problems):
        return None
    known = copy.deepcopy(payload)
    for problem in problems:
        *path, name = problem["loc"]
        container: Any = known
        for step in path:
            container = container[step]
        if isinstance(container, dict):
            container.pop(name, None)
    return known
