"""Schemathesis against each service as a real process: no 5xx, answers as declared (ADR 27).

Every operation of a service's `/openapi.json` gets a few derandomized generated requests, once
with an admin's token and once with a sales token of one direction. Bounded so the module stays
within a few minutes on two slow cores; a failure names the operation and the check.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import httpx
import pytest
import schemathesis
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.processes import ServiceProcess
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = pytest.mark.integration

# Examples per operation, token and mode: valid requests (positive) and requests that break the
# schema (negative: wrong types, missing fields, out-of-range values), which must be a 4xx.
# FUZZ_EXAMPLES scales both for a longer local run.
_SCALE = int(os.environ.get("FUZZ_EXAMPLES", "1"))
MAX_EXAMPLES = {GenerationMode.POSITIVE: 6 * _SCALE, GenerationMode.NEGATIVE: 4 * _SCALE}
# Conformance: the body matches the schema declared for its status code and media type, and
# both are declared at all (schemathesis' schema check alone skips an undeclared one).
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]

# What cannot be fuzzed meaningfully, each with its reason.
EXCLUDED = {
    # Operational endpoints, tested in tests/integration/test_services.py: /metrics answers
    # Prometheus text (no schema to conform to), the probes answer whatever readiness is.
    "GET /metrics": "Prometheus text exposition, not JSON; access tested elsewhere",
    "GET /health/live": "probe, no input",
    "GET /health/ready": "probe, no input",
    # A server-sent-event stream never ends: a generated request would hold until the timeout.
    "GET /v1/inbox/stream": "endless server-sent-event stream",
}

# Known failures not fixed yet, the only place a failure may be tolerated: (service, operation,
# failure kind) -> reason, the kind being schemathesis' failure class (ServerError,
# JsonSchemaError, UndefinedStatusCode, UndefinedContentType). An entry that no longer fails
# fails the test, so the table only shrinks. Empty is the goal.
KNOWN_FAILURES: dict[tuple[str, str, str], str] = {}

ROLES = {
    "admin": {"roles": ["admin"], "directions": []},
    "sales": {"roles": ["sales"], "directions": ["north"]},
}


def _environment(service: str) -> dict[str, str]:
    if service == "notifier":  # no deliveries while fuzzing; its secrets key is required
        return {"RUN_WORKERS": "false", "WEBHOOK_SECRETS_KEY": Fernet.generate_key().decode()}
    return {}


def _fuzz_operation(
    operation: APIOperation, mode: GenerationMode, url: str, headers: dict[str, str]
) -> list[tuple[str, str]]:
    """A few generated requests to one operation; its failures as (kind, text)."""
    seen: list[tuple[str, str]] = []
    statuses: list[int] = []

    @settings(
        max_examples=MAX_EXAMPLES[mode],
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        statuses.append(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except (Failure, FailureGroup) as found:  # keep going: one run shows them all
            group = found.exceptions if isinstance(found, FailureGroup) else (found,)
            request = (
                f"{mode.value} {case.method} {case.formatted_path} query={case.query!r:.200} "
                f"body={case.body!r:.300} -> {response.status_code}"
            )
            for failure in group:
                text = f"{request}: {failure.title}: {failure.message:.900}"
                seen.append((type(failure).__name__, text))

    try:
        run()
    except Unsatisfiable:  # negative mode, nothing to break: an operation without input
        assert mode is GenerationMode.NEGATIVE, operation
        return seen
    assert statuses, f"{operation.method.upper()} {operation.path}: no request was made"
    return seen


def _fuzz(url: str, headers: dict[str, str], service: str) -> dict[tuple[str, str, str], str]:
    """Run every operation; each (service, operation, failure kind) found, with one example."""
    raw = httpx.get(f"{url}/openapi.json", timeout=30).json()
    assert '"format": "time"' not in json.dumps(raw), (
        f"{service}: a field is declared as JSON Schema format time, which needs an offset that "
        "a wall-clock time lacks; use clientele_shared.values.ClockTime"
    )
    failures: dict[tuple[str, str, str], str] = {}
    for result in schemathesis.openapi.from_dict(raw).get_all_operations():
        if isinstance(result, Err):  # an operation schemathesis cannot read fails the test
            raise result.err()
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        if label in EXCLUDED:
            continue
        for mode in MAX_EXAMPLES:
            for kind, text in _fuzz_operation(operation, mode, url, headers):
                failures.setdefault((service, label, kind), text)
    return failures


@pytest.mark.parametrize(
    "service", ["directory", "interactions", "pipeline", "campaigns", "notifier"]
)
def test_every_operation_answers_without_server_errors_and_as_declared(
    service: str, start_service: Callable[..., ServiceProcess], issuer: TokenIssuer
) -> None:
    process = start_service(service, **_environment(service))
    found: dict[tuple[str, str, str], str] = {}
    for role, claims in ROLES.items():
        token = issuer.mint(f"fuzz-{role}", ttl_seconds=3600, **claims)  # type: ignore[arg-type]
        for key, text in _fuzz(process.url, {"Authorization": f"Bearer {token}"}, service).items():
            found.setdefault(key, f"[{role}] {text}")
    new = [
        f"{key[1]} [{key[2]}] {text}" for key, text in found.items() if key not in KNOWN_FAILURES
    ]
    assert not new, "\n\n".join(new)
    fixed = [key for key in KNOWN_FAILURES if key[0] == service and key not in found]
    assert not fixed, f"no longer failing, remove from KNOWN_FAILURES: {fixed}"
