"""Topics, their owners and consumers, and every event type with its payload schema."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ValidationError

from clientele_shared.events.envelope import Envelope


class GrantError(RuntimeError):
    """A service tried to publish or consume outside its topic grants."""


class UnknownEventError(ValueError):
    """An event whose type, version or payload the registry does not accept."""


@dataclass(frozen=True)
class Topic:
    """A Kafka topic: one owning (publishing) service and the services allowed to consume it."""

    name: str
    owner: str
    consumers: frozenset[str]
    partitions: int = 3
    description: str = ""

    @property
    def dead_letter(self) -> str:
        """The dead-letter topic of this topic; any of its consumers may publish there."""
        return f"{self.name}.dlt"


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
        """Return the typed payload of an envelope or raise UnknownEventError."""
        spec = self.spec(envelope.type, envelope.schema_version)
        try:
            return spec.payload.model_validate(envelope.payload)
        except ValidationError as exc:
            raise UnknownEventError(
                f"event {envelope.type} v{envelope.schema_version} has an invalid payload: "
                f"{exc.error_count()} error(s): {exc.errors(include_url=False)}"
            ) from exc
