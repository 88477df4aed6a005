"""The pipeline learns clients from the directory's state topics (ADR 18): a client that only
a state snapshot tells of can get deals, and an old change event replayed after a newer
snapshot (a new consumer group reads the change topic from its start) changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_shared.events.schemas.directory import OrganizationCreated, OrganizationState
from clientele_shared.events.topics import ORGANIZATIONS, ORGANIZATIONS_STATE
from clientele_testkit.stack import directory_envelope
from pipeline_testkit import DEFAULT_STAGES, Stack

pytestmark = pytest.mark.integration
NORTH = ["north"]


@pytest.fixture(scope="module")
def pipeline(stack: Stack) -> dict[str, Any]:
    body = {"name": "Холодные", "directions": NORTH, "stages": DEFAULT_STAGES}
    response = stack.call("POST", "/v1/pipelines", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return response.json()


def _state(org: uuid.UUID, version: int, revision: int, **fields: Any) -> OrganizationState:
    return OrganizationState(
        organization_id=org,
        version=version,
        revision=revision,
        legal_name="ООО «Снимок»",
        status="client",
        directions=NORTH,
        **fields,
    )


def _deal(stack: Stack, pipeline: dict[str, Any], org: uuid.UUID) -> Any:
    draft = {"pipeline_id": pipeline["id"], "organization_id": str(org), "title": "Поставка"}
    return stack.call("POST", "/v1/deals", stack.user(NORTH), json=draft)


def test_a_client_known_only_from_its_state_gets_deals(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    org = uuid.uuid4()
    snapshot = directory_envelope("directory.organization.state", _state(org, 4, 9), org)
    stack.send(ORGANIZATIONS_STATE, [snapshot])
    stack.wait_until(
        "SELECT version FROM organizations WHERE organization_id = :id", 4, "the state", id=org
    )
    assert _deal(stack, pipeline, org).status_code == 201


def test_an_old_change_event_after_a_newer_state_changes_nothing(
    stack: Stack, pipeline: dict[str, Any]
) -> None:
    org = uuid.uuid4()
    blocked = directory_envelope(
        "directory.organization.state", _state(org, 2, 5, blocked=True), org
    )
    stack.send(ORGANIZATIONS_STATE, [blocked])
    stack.wait_until(
        "SELECT blocked FROM organizations WHERE organization_id = :id", True, "blocked", id=org
    )
    refused = _deal(stack, pipeline, org)
    assert refused.status_code == 409, refused.text
    created = OrganizationCreated(
        organization_id=org, legal_name="ООО «Снимок»", status="client", directions=NORTH
    )
    stack.send(ORGANIZATIONS, [directory_envelope("directory.organization.created", created, org)])
    marker = uuid.uuid4()  # an event after it on the same partition tells it was applied
    later = OrganizationCreated(
        organization_id=marker, legal_name="Метка", status="client", directions=NORTH
    )
    stack.send(ORGANIZATIONS, [directory_envelope("directory.organization.created", later, org)])
    stack.wait_until(
        "SELECT count(*) FROM organizations WHERE organization_id = :id", 1, "marker", id=marker
    )
    assert (
        stack.scalar(
            "SELECT (version, blocked)::text FROM organizations WHERE organization_id = :id", id=org
        )
        == "(2,t)"
    )
    assert _deal(stack, pipeline, org).status_code == 409
