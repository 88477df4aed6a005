"""Strimzi Kafka topics and users generated from the topic registry.

The registry (``clientele_shared.events.catalog``) is the single source of truth: every topic
and its dead-letter topic becomes a ``KafkaTopic``, and every principal named in it (the five
services and the ERP integration) becomes a ``KafkaUser`` whose simple-authorization ACLs are its
grants:

* Describe and Write on the topics it owns;
* Describe and Read on the topics it consumes, and Write on their ``.dlt`` topics;
* Read on the consumer groups prefixed ``<principal>.`` (group ids are ``<service>.<name>``);
* IdempotentWrite on the cluster (the producers run with ``enable_idempotence``);
* Create, Describe and Write on the per-direction feed topics (prefix ``clientele.feed.``) for
  the owners of topics the ERP reads: their relays copy those events there (ADR 26).

An ERP limited to some directions gets a user of its own, reading only those directions' feeds:
``python -m clientele_shared.deploy_manifests --erp-user NAME --directions a,b`` prints it with
the feeds' ``KafkaTopic``s.

``python -m clientele_shared.deploy_manifests [--out DIR] [--check]`` writes (or verifies)
``topics.yaml`` and ``users.yaml``; the committed copies live in ``deploy/k8s/kafka/``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from clientele_shared.events.catalog import ERP, ERP_DOCUMENTS, REGISTRY, SERVICES
from clientele_shared.events.feeds import FEED_PREFIX, feed_topic
from clientele_shared.events.registry import Registry, Topic

Manifest = dict[str, Any]
DIRECTION = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

STRIMZI_API_VERSION = "kafka.strimzi.io/v1"  # Strimzi 0.49 and later
KAFKA_CLUSTER = "clientele"
"""The Strimzi ``Kafka`` resource the topics and users belong to (``strimzi.io/cluster``)."""
REPLICAS = 3
MIN_INSYNC_REPLICAS = 2
DEFAULT_OUT = Path("deploy/k8s/kafka")
HEADER = (
    "# Generated from clientele_shared.events.catalog by\n"
    "#   uv run python -m clientele_shared.deploy_manifests\n"
    "# Do not edit: change the topic registry and regenerate.\n"
)


def principals(registry: Registry = REGISTRY) -> list[str]:
    """Every service, then every other owner or consumer in the registry (e.g. ``erp``)."""
    named = {topic.owner for topic in registry.topics.values()}
    for topic in registry.topics.values():
        named |= topic.consumers
    return [*SERVICES, *sorted(named - set(SERVICES))]


def kafka_user_name(principal: str) -> str:
    """The ``KafkaUser`` (and so the Kafka principal ``User:<name>``) of a service."""
    return f"clientele-{principal}"


def _metadata(name: str, cluster: str, **labels: str) -> Manifest:
    return {
        "name": name,
        "labels": {
            "strimzi.io/cluster": cluster,
            "app.kubernetes.io/part-of": "clientele",
            **labels,
        },
    }


def _topic(topic: Topic, cluster: str) -> Manifest:
    return {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaTopic",
        "metadata": _metadata(topic.name, cluster, **{"clientele/owner": topic.owner}),
        "spec": {
            "topicName": topic.name,
            "partitions": topic.partitions,
            "replicas": REPLICAS,
            "config": {"min.insync.replicas": MIN_INSYNC_REPLICAS, **topic.config()},
        },
    }


def kafka_topics(registry: Registry = REGISTRY, *, cluster: str = KAFKA_CLUSTER) -> list[Manifest]:
    """A ``KafkaTopic`` for every registered topic, each followed by its dead-letter topic
    (state topics compacted, see ADR 18)."""
    manifests: list[Manifest] = []
    for topic in registry.topics.values():
        manifests.append(_topic(topic, cluster))
        manifests.append(_topic(topic.dead_letter_topic(), cluster))
    return manifests


def _acl(kind: str, name: str, operations: Sequence[str], *, prefix: bool = False) -> Manifest:
    return {
        "resource": {
            "type": kind,
            "name": name,
            "patternType": "prefix" if prefix else "literal",
        },
        "operations": list(operations),
        "host": "*",
    }


def kafka_acls(principal: str, registry: Registry = REGISTRY) -> list[Manifest]:
    """The simple-authorization ACLs of one principal, derived from its grants."""
    owned = [topic for topic in registry.topics.values() if topic.owner == principal]
    consumed = [topic for topic in registry.topics.values() if principal in topic.consumers]
    acls = [_acl("topic", topic.name, ["Describe", "Write"]) for topic in owned]
    for topic in consumed:
        acls.append(_acl("topic", topic.name, ["Describe", "Read"]))
        acls.append(_acl("topic", topic.dead_letter, ["Write"]))
    if consumed:
        acls.append(_acl("group", f"{principal}.", ["Read"], prefix=True))
    if any(ERP in topic.consumers for topic in owned):
        acls.append(_acl("topic", FEED_PREFIX, ["Create", "Describe", "Write"], prefix=True))
    acls.append({"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"], "host": "*"})
    return acls


def erp_user(
    name: str, directions: Sequence[str], *, cluster: str = KAFKA_CLUSTER
) -> list[Manifest]:
    """An ERP principal that reads only these directions' feeds (and publishes documents back),
    with the feeds' topics (ADR 26)."""
    feeds = [feed_topic(d, state=state) for d in directions for state in (False, True)]
    documents = REGISTRY.topic(ERP_DOCUMENTS)
    acls = [_acl("topic", topic.name, ["Describe", "Read"]) for topic in feeds]
    acls.append(_acl("topic", documents.name, ["Describe", "Write"]))
    acls.append(_acl("group", f"erp-{name}.", ["Read"], prefix=True))
    acls.append({"resource": {"type": "cluster"}, "operations": ["IdempotentWrite"], "host": "*"})
    user = {
        "apiVersion": STRIMZI_API_VERSION,
        "kind": "KafkaUser",
        "metadata": _metadata(
            kafka_user_name(f"erp-{name}"), cluster, **{"clientele/principal": f"erp-{name}"}
        ),
        "spec": {
            "authentication": {"type": "scram-sha-512"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }
    return [*(_topic(topic, cluster) for topic in feeds), user]


def kafka_users(registry: Registry = REGISTRY, *, cluster: str = KAFKA_CLUSTER) -> list[Manifest]:
    """One SCRAM-authenticated ``KafkaUser`` per principal, with its ACLs."""
    return [
        {
            "apiVersion": STRIMZI_API_VERSION,
            "kind": "KafkaUser",
            "metadata": _metadata(
                kafka_user_name(principal), cluster, **{"clientele/principal": principal}
            ),
            "spec": {
                "authentication": {"type": "scram-sha-512"},
                "authorization": {"type": "simple", "acls": kafka_acls(principal, registry)},
            },
        }
        for principal in principals(registry)
    ]


def to_yaml(documents: Iterable[Manifest]) -> str:
    """Multi-document YAML, keys in insertion order, with the do-not-edit header."""
    body = yaml.safe_dump_all(
        list(documents), sort_keys=False, explicit_start=True, default_flow_style=False, width=100
    )
    return HEADER + str(body)


def render(registry: Registry = REGISTRY, *, cluster: str = KAFKA_CLUSTER) -> dict[str, str]:
    """File name -> content of the Kafka manifests."""
    return {
        "topics.yaml": to_yaml(kafka_topics(registry, cluster=cluster)),
        "users.yaml": to_yaml(kafka_users(registry, cluster=cluster)),
    }


def stale(out: Path, rendered: dict[str, str]) -> list[Path]:
    """The files under ``out`` that are missing or differ from ``rendered``."""
    paths = [out / name for name in rendered]
    return [
        path
        for path in paths
        if not path.is_file() or path.read_text(encoding="utf-8") != rendered[path.name]
    ]


def write(out: Path, rendered: dict[str, str]) -> list[Path]:
    """Write ``rendered`` into ``out``; return the files that changed."""
    changed = stale(out, rendered)
    out.mkdir(parents=True, exist_ok=True)
    for path in changed:
        path.write_text(rendered[path.name], encoding="utf-8")
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clientele_shared.deploy_manifests", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"default: {DEFAULT_OUT}")
    parser.add_argument("--cluster", default=KAFKA_CLUSTER, help="the strimzi.io/cluster label")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the files are stale"
    )
    parser.add_argument("--erp-user", help="print a KafkaUser for an ERP limited to --directions")
    parser.add_argument("--directions", default="", help="comma-separated direction codes")
    args = parser.parse_args(argv)
    if args.erp_user:
        directions = [d for d in args.directions.split(",") if d]
        if not directions or not all(DIRECTION.fullmatch(d) for d in [args.erp_user, *directions]):
            parser.error("--erp-user NAME needs --directions a,b (codes such as north, b2b-msk)")
        print(to_yaml(erp_user(args.erp_user, directions, cluster=args.cluster)), end="")
        return 0
    rendered = render(cluster=args.cluster)
    if args.check:
        outdated = stale(args.out, rendered)
        for path in outdated:
            print(f"stale: {path}", file=sys.stderr)
        return 1 if outdated else 0
    for path in write(args.out, rendered):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
