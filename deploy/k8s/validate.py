"""Render every kustomization of deploy/k8s with kustomize and validate what it produces.

Each rendered object is checked against its schema, strictly (an unknown field is an error, as
`kubectl apply --validate=strict` would say): Kubernetes kinds against the schemas bundled with
kubernetes-validate (Apache-2.0), Strimzi and Prometheus Operator kinds against their CRD schemas
committed under deploy/k8s/schemas/ (see its NOTICE.md). References between objects are checked
too: an HPA, Ingress, ServiceMonitor or PodDisruptionBudget must point at something rendered.

    uv run python deploy/k8s/validate.py [--kustomize PATH]

The kustomize binary is `--kustomize`, `$KUSTOMIZE`, `kustomize` on the PATH, or the one
`deploy/k8s/tools.sh` builds into .state/tools/bin (pinned, from the Go module proxy).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
KUBERNETES_VERSION = "1.33.0"
"""The oldest Kubernetes release we support: the schemas of its API."""
RENDERED = ("base", "kafka", "overlays/example")
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "strimzi/kafkatopic-kafka.strimzi.io-v1.json",
    ("kafka.strimzi.io/v1", "KafkaUser"): "strimzi/kafkauser-kafka.strimzi.io-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): (
        "monitoring/prometheusrule-monitoring.coreos.com-v1.json"
    ),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): (
        "monitoring/servicemonitor-monitoring.coreos.com-v1.json"
    ),
}


def find_kustomize(given: str | None) -> str:
    candidates = [given, os.environ.get("KUSTOMIZE"), shutil.which("kustomize")]
    candidates.append(str(ROOT / ".state" / "tools" / "bin" / "kustomize"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    sys.exit("kustomize not found: run deploy/k8s/tools.sh (or set KUSTOMIZE)")


def render(kustomize: str, directory: str) -> list[dict[str, Any]]:
    output = subprocess.run(  # noqa: S603 - our own binary on our own directories
        [kustomize, "build", str(HERE / directory)], check=True, capture_output=True, text=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(output) if doc]


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused (the API server would prune them silently)."""
    if isinstance(schema, dict):
        result = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in result
            and "additionalProperties" not in result
            and not result.get("x-kubernetes-preserve-unknown-fields")
        ):
            result["additionalProperties"] = False
        return result
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_errors(doc: dict[str, Any], schema_file: str) -> Iterator[str]:
    schema = strict(json.loads((HERE / "schemas" / schema_file).read_text()))
    # the API server owns these; the CRD schema leaves them open
    schema.setdefault("properties", {}).update(
        {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {}}
    )
    validator = jsonschema.Draft7Validator(schema)
    for error in validator.iter_errors(doc):
        location = "/".join(str(part) for part in error.absolute_path)
        yield f"{location}: {error.message}"


def schema_errors(doc: dict[str, Any]) -> Iterator[str]:
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key in CRD_SCHEMAS:
        yield from crd_errors(doc, CRD_SCHEMAS[key])
        return
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        location = "/".join(str(part) for part in error.path)
        yield f"{location}: {error.message}"
    except kubernetes_validate.SchemaNotFoundError:
        yield f"no schema for {key[0]} {key[1]}"


def reference_errors(docs: list[dict[str, Any]]) -> Iterator[str]:
    """Every object that points at another must find it among the rendered ones."""
    names = {(doc["kind"], doc["metadata"]["name"]) for doc in docs}
    services = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Service"}
    deployments = [doc for doc in docs if doc["kind"] == "Deployment"]

    def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
        return all(labels.get(key) == value for key, value in selector.items())

    for doc in docs:
        kind, name, spec = doc["kind"], doc["metadata"]["name"], doc.get("spec", {})
        if kind == "HorizontalPodAutoscaler":
            target = spec["scaleTargetRef"]
            if (target["kind"], target["name"]) not in names:
                yield f"{kind} {name}: no {target['kind']} {target['name']}"
        elif kind == "Ingress":
            for rule in spec.get("rules", []):
                for path in rule["http"]["paths"]:
                    backend = path["backend"]["service"]
                    service = services.get(backend["name"])
                    spec_ports = service["spec"]["ports"] if service else []
                    ports = [port.get("name") for port in spec_ports]
                    if service is None or backend["port"].get("name") not in ports:
                        yield f"{kind} {name}: no Service port {backend['name']}:{backend['port']}"
        elif kind in ("ServiceMonitor", "PodDisruptionBudget"):
            selector = spec["selector"]["matchLabels"]
            pool = services.values() if kind == "ServiceMonitor" else deployments
            found = [
                other
                for other in pool
                if selects(
                    selector,
                    other["metadata"]["labels"]
                    if kind == "ServiceMonitor"
                    else other["spec"]["template"]["metadata"]["labels"],
                )
            ]
            if not found:
                yield f"{kind} {name}: selects nothing"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kustomize", help="the kustomize binary")
    kustomize = find_kustomize(parser.parse_args().kustomize)
    failures = 0
    for directory in RENDERED:
        docs = render(kustomize, directory)
        problems = [
            f"{doc.get('kind')} {doc.get('metadata', {}).get('name')}: {message}"
            for doc in docs
            for message in schema_errors(doc)
        ]
        problems += list(reference_errors(docs))
        for problem in problems:
            print(f"deploy/k8s/{directory}: {problem}", file=sys.stderr)
        failures += len(problems)
        print(f"deploy/k8s/{directory}: {len(docs)} objects, {len(problems)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
