"""The Kubernetes manifests: generated from the registry and the service list, never drifting."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from clientele_shared.events.catalog import (
    DEALS,
    ERP,
    ORGANIZATIONS,
    REGISTRY,
    SERVICES,
)

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"


def _beside(name: str) -> ModuleType:
    """A module of deploy/k8s (deploy tooling is no installed package)."""
    spec = importlib.util.spec_from_file_location(f"clientele_k8s_{name}", K8S / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


deploy_manifests = _beside("kafka_manifests")


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    return _beside("generate")


@pytest.fixture(scope="module")
def users() -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _load(K8S / "kafka" / "users.yaml")}


def _allows(user: dict[str, Any], operation: str, kind: str, name: str) -> bool:
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        if resource["type"] != kind or operation not in acl["operations"]:
            continue
        if kind == "cluster":
            return True
        pattern = resource.get("patternType", "literal")
        if (pattern == "literal" and resource["name"] in (name, "*")) or (
            pattern == "prefix" and name.startswith(resource["name"])
        ):
            return True
    return False


def _user(users: dict[str, dict[str, Any]], principal: str) -> dict[str, Any]:
    return users[deploy_manifests.kafka_user_name(principal)]


# -- committed == generated ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["topics.yaml", "users.yaml"])
def test_committed_kafka_manifests_equal_the_registry(name: str) -> None:
    committed = (K8S / "kafka" / name).read_text(encoding="utf-8")
    assert committed == deploy_manifests.render()[name], (
        f"deploy/k8s/kafka/{name} is stale: run `uv run python deploy/k8s/generate.py`"
    )


def test_committed_base_equals_the_generator(generator: ModuleType) -> None:
    rendered: dict[str, str] = generator.render_base()
    on_disk = {path.name for path in (K8S / "base").glob("*.yaml")}
    assert on_disk == set(rendered), "deploy/k8s/base holds files the generator does not write"
    for name, text in rendered.items():
        assert (K8S / "base" / name).read_text(encoding="utf-8") == text, (
            f"deploy/k8s/base/{name} is stale: run `uv run python deploy/k8s/generate.py`"
        )
    assert generator.main(["--check"]) == 0


# -- topics ------------------------------------------------------------------------------------


def test_every_topic_and_its_dead_letter_topic_is_declared() -> None:
    topics = {doc["spec"]["topicName"]: doc for doc in _load(K8S / "kafka" / "topics.yaml")}
    expected = {
        name for topic in REGISTRY.topics.values() for name in (topic.name, topic.dead_letter)
    }
    assert set(topics) == expected
    for topic in REGISTRY.topics.values():
        for name in (topic.name, topic.dead_letter):
            doc = topics[name]
            assert doc["kind"] == "KafkaTopic"
            assert doc["spec"]["partitions"] == topic.partitions
            assert doc["spec"]["replicas"] == 3
            assert doc["spec"]["config"]["min.insync.replicas"] == 2
        assert topics[topic.name]["spec"]["config"] == {"min.insync.replicas": 2, **topic.config()}


def test_state_topics_are_compacted_and_their_dead_letters_are_not() -> None:
    topics = {doc["spec"]["topicName"]: doc for doc in _load(K8S / "kafka" / "topics.yaml")}
    state = topics["clientele.directory.organizations.state"]["spec"]["config"]
    assert state["cleanup.policy"] == "compact"
    assert state["min.compaction.lag.ms"] > 0
    assert "retention.ms" not in state
    dead_letters = topics["clientele.directory.organizations.state.dlt"]["spec"]["config"]
    assert "cleanup.policy" not in dead_letters
    changes = topics["clientele.directory.organizations"]["spec"]["config"]
    assert changes["retention.ms"] == 30 * 24 * 3600 * 1000


# -- users and ACLs ----------------------------------------------------------------------------


def test_one_user_per_service_and_the_erp(users: dict[str, dict[str, Any]]) -> None:
    assert set(users) == {deploy_manifests.kafka_user_name(p) for p in (*SERVICES, ERP)}
    for user in users.values():
        assert user["kind"] == "KafkaUser"
        assert user["spec"]["authorization"]["type"] == "simple"
        assert _allows(user, "IdempotentWrite", "cluster", "")


def test_the_directory_writes_organizations_but_not_deals(users: dict[str, dict[str, Any]]) -> None:
    directory = _user(users, "directory")
    assert _allows(directory, "Write", "topic", ORGANIZATIONS)
    assert _allows(directory, "Describe", "topic", ORGANIZATIONS)
    assert not _allows(directory, "Write", "topic", DEALS)
    assert not _allows(directory, "Read", "topic", DEALS)


def test_interactions_reads_organizations_and_the_notifier_does_not(
    users: dict[str, dict[str, Any]],
) -> None:
    interactions = _user(users, "interactions")
    assert _allows(interactions, "Read", "topic", ORGANIZATIONS)
    assert _allows(interactions, "Write", "topic", f"{ORGANIZATIONS}.dlt")
    assert not _allows(interactions, "Write", "topic", ORGANIZATIONS)
    assert _allows(interactions, "Read", "group", "interactions.organizations")
    assert not _allows(interactions, "Read", "group", "pipeline.organizations")
    notifier = _user(users, "notifier")
    assert not _allows(notifier, "Read", "topic", ORGANIZATIONS)
    assert not _allows(notifier, "Write", "topic", f"{ORGANIZATIONS}.dlt")


def test_acls_are_exactly_the_registry_grants(users: dict[str, dict[str, Any]]) -> None:
    for principal in (*SERVICES, ERP):
        user = _user(users, principal)
        for topic in REGISTRY.topics.values():
            owns = topic.owner == principal
            consumes = principal in topic.consumers
            assert _allows(user, "Write", "topic", topic.name) is owns, (principal, topic.name)
            assert _allows(user, "Read", "topic", topic.name) is consumes, (principal, topic.name)
            assert _allows(user, "Write", "topic", topic.dead_letter) is consumes
            assert not _allows(user, "Read", "topic", topic.dead_letter)


# -- the kustomize base ------------------------------------------------------------------------


def _base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text("utf-8"))
    return [doc for name in kustomization["resources"] for doc in _load(K8S / "base" / name)]


def _one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_deployed_with_probes_and_migrations(service: str) -> None:
    docs = _base()
    deployment = _one(docs, "Deployment", f"clientele-{service}")
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["securityContext"]["runAsNonRoot"] is True

    (migrate,) = pod["initContainers"]
    assert migrate["args"] == ["migrate", service]
    (container,) = pod["containers"]
    assert container["args"] == ["serve", service]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    for each in (migrate, container):
        assert each["image"] == "clientele"
        assert each["securityContext"]["runAsNonRoot"] is True
        assert each["securityContext"]["readOnlyRootFilesystem"] is True
        assert each["resources"]["requests"]
        assert each["resources"]["limits"]

    env = {item["name"]: item for item in container["env"]}
    assert env["HTTP_HOST"]["value"] == "0.0.0.0"  # noqa: S104 - in-pod, behind the Service
    assert env["HTTP_PORT"]["value"] == "8000"
    for each in (migrate, container):
        db = {item["name"]: item for item in each["env"]}["DATABASE_URL"]
        assert db["valueFrom"]["secretKeyRef"]["name"] == f"clientele-{service}-db"
    assert env["REDIS_URL"]["valueFrom"]["secretKeyRef"]["name"] == "clientele-redis"
    assert container["envFrom"] == [
        {"configMapRef": {"name": "clientele-config"}},
        {"configMapRef": {"name": f"clientele-{service}-config", "optional": True}},
        {"secretRef": {"name": f"clientele-{service}-env", "optional": True}},
    ]

    service_doc = _one(docs, "Service", f"clientele-{service}")
    assert service_doc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]
    assert service_doc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    pdb = _one(docs, "PodDisruptionBudget", f"clientele-{service}")
    assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_the_base_contains_no_secret_and_configures_every_setting() -> None:
    docs = _base()
    assert not [d for d in docs if d["kind"] == "Secret"]
    config = _one(docs, "ConfigMap", "clientele-config")
    assert {"KAFKA_BOOTSTRAP_SERVERS", "AUTH_ISSUER", "AUTH_AUDIENCE", "AUTH_JWKS_URL"} <= set(
        config["data"]
    )
