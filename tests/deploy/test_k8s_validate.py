"""The K8s validator refuses what a cluster would refuse or silently drop (no kustomize needed)."""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
_spec = importlib.util.spec_from_file_location("k8s_validate", K8S / "validate.py")
assert _spec is not None
assert _spec.loader is not None
validate = importlib.util.module_from_spec(_spec)
sys.modules["k8s_validate"] = validate
_spec.loader.exec_module(validate)


def documents(path: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all((K8S / path).read_text()) if doc]


def first(path: str, kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(doc for doc in documents(path) if doc["kind"] == kind))


@pytest.mark.parametrize(
    "path",
    [
        "kafka/topics.yaml",
        "kafka/users.yaml",
        "components/autoscaling/hpa.yaml",
        "components/network-policies/policies.yaml",
        "components/ingress/ingress.yaml",
        "components/monitoring/servicemonitors.yaml",
        "components/monitoring/alerts.yaml",
    ],
)
def test_the_committed_manifests_are_valid(path: str) -> None:
    problems = [message for doc in documents(path) for message in validate.schema_errors(doc)]
    assert problems == []


def test_a_misspelt_strimzi_field_is_refused_not_pruned() -> None:
    topic = first("kafka/topics.yaml", "KafkaTopic")
    topic["spec"]["partitionz"] = 3
    assert any("partitionz" in message for message in validate.schema_errors(topic))


def test_an_unknown_acl_operation_is_refused() -> None:
    user = first("kafka/users.yaml", "KafkaUser")
    user["spec"]["authorization"]["acls"][0]["operations"] = ["Publish"]
    assert list(validate.schema_errors(user))


def test_a_kubernetes_field_of_the_wrong_type_or_name_is_refused() -> None:
    hpa = first("components/autoscaling/hpa.yaml", "HorizontalPodAutoscaler")
    hpa["spec"]["maxReplicas"] = "ten"
    assert any("maxReplicas" in message for message in validate.schema_errors(hpa))
    hpa["spec"]["maxReplicas"] = 10
    hpa["spec"]["minReplica"] = 2
    assert any("minReplica" in message for message in validate.schema_errors(hpa))


def test_an_unknown_kind_is_reported() -> None:
    assert list(validate.schema_errors({"apiVersion": "example.com/v1", "kind": "Widget"}))


def test_objects_must_point_at_rendered_ones() -> None:
    base = [*documents("base/pipeline.yaml")]
    hpa = first("components/autoscaling/hpa.yaml", "HorizontalPodAutoscaler")
    ingress = first("components/ingress/ingress.yaml", "Ingress")
    monitor = first("components/monitoring/servicemonitors.yaml", "ServiceMonitor")
    for doc in (hpa, ingress, monitor):
        doc["metadata"]["name"] = "clientele-pipeline"
    hpa["spec"]["scaleTargetRef"]["name"] = "clientele-pipeline"
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] = (
        "clientele-pipeline"
    )
    monitor["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "clientele-pipeline"}
    assert list(validate.reference_errors([*base, hpa, ingress, monitor])) == []

    hpa["spec"]["scaleTargetRef"]["name"] = "clientele-missing"
    ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"] = {"name": "web"}
    monitor["spec"]["selector"]["matchLabels"] = {"app.kubernetes.io/name": "nobody"}
    problems = list(validate.reference_errors([*base, hpa, ingress, monitor]))
    assert len(problems) == 3


def test_an_erp_user_limited_to_directions_reads_only_their_feeds() -> None:
    from clientele_shared.deploy_manifests import erp_user

    manifests = erp_user("acme", ["north"])
    assert [message for doc in manifests for message in validate.schema_errors(doc)] == []
    user = next(doc for doc in manifests if doc["kind"] == "KafkaUser")
    readable = {
        acl["resource"]["name"]
        for acl in user["spec"]["authorization"]["acls"]
        if "Read" in acl.get("operations", []) and acl["resource"]["type"] == "topic"
    }
    assert readable == {"clientele.feed.north", "clientele.feed.north.state"}
    topics = {doc["spec"]["topicName"] for doc in manifests if doc["kind"] == "KafkaTopic"}
    assert topics == readable
