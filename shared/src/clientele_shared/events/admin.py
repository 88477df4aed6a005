"""Create the registry's topics with their partitions and configuration (ADR 18).

Brokers run with ``auto.create.topics.enable=false`` (locally as on Kubernetes), so a topic is
never made up by the first client that names it with the broker's defaults (1 partition, no
compaction). Services create the topics they publish and consume at start-up; Strimzi creates
the same topics from the manifests generated from the registry. Creating is idempotent: a topic
that exists is left as it is, and a partition count that differs from the registry is logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code

from clientele_shared.events.registry import Registry, Topic
from clientele_shared.observability import get_logger

log = get_logger(__name__)

TOPIC_ALREADY_EXISTS = 36


def topics_of(
    registry: Registry, *, publishes: Iterable[str] = (), consumes: Iterable[str] = ()
) -> list[Topic]:
    """The topics a service needs: those it publishes, those it consumes and their dead letters."""
    wanted: dict[str, Topic] = {}
    for name in publishes:
        topic = registry.topic(name)
        wanted[topic.name] = topic
    for name in consumes:
        topic = registry.topic(name)
        wanted[topic.name] = topic
        wanted[topic.dead_letter] = topic.dead_letter_topic()
    return list(wanted.values())


def all_topics(registry: Registry) -> list[Topic]:
    """Every topic of the registry and its dead-letter topic."""
    return [
        each for topic in registry.topics.values() for each in (topic, topic.dead_letter_topic())
    ]


async def ensure_topics(
    bootstrap_servers: str,
    topics: Iterable[Topic],
    *,
    replication_factor: int = 1,
    **client_options: Any,
) -> list[str]:
    """Create the missing topics with their partitions and configuration; return their names.

    ``client_options``: security options of an aiokafka client (``KafkaSecurity.client_options``).
    """
    wanted = {topic.name: topic for topic in topics}
    if not wanted:
        return []
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    await admin.start()
    try:
        existing = {
            described["topic"]: len(described["partitions"])
            for described in await admin.describe_topics(list(wanted))
            if described["error_code"] == 0
        }
        for name, partitions in existing.items():
            if partitions != wanted[name].partitions:
                log.warning(
                    "topic has another partition count than the registry says",
                    topic=name,
                    partitions=partitions,
                    registry=wanted[name].partitions,
                )
        missing = [topic for name, topic in wanted.items() if name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(
                    topic.name,
                    topic.partitions,
                    replication_factor,
                    topic_configs={key: str(value) for key, value in topic.config().items()},
                )
                for topic in missing
            ]
        )
    finally:
        await admin.close()
    created = []
    for name, code, *rest in response.topic_errors:
        if code == 0:
            created.append(name)
        elif code != TOPIC_ALREADY_EXISTS:  # another replica created it first: fine
            message = rest[0] if rest else ""
            raise for_code(code)(f"could not create topic {name}: {message}")
    if created:
        log.info("created topics", topics=sorted(created))
    return created
