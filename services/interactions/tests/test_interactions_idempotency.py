"""Idempotency-Key on the interactions' creates: a retried POST /v1/interactions logs one."""

import uuid

import pytest
from clientele_shared.testing.idempotency import IdempotentCreate, check_idempotent_create, scalar
from interactions_testkit import Stack, bearer

pytestmark = pytest.mark.integration


def test_a_retried_interaction_log_makes_one(stack: Stack, direction: str) -> None:
    org_id = stack.client([direction])

    def new_body() -> dict[str, object]:
        return {
            "organization_id": str(org_id),
            "kind": "call",
            "subject": f"Retried call {uuid.uuid4().hex[:10]}",
        }

    def count(body: dict[str, object]) -> int:
        sql = "SELECT count(*) FROM interactions WHERE subject = :subject"
        return int(scalar(stack.database_url, sql, subject=body["subject"]))

    check_idempotent_create(
        IdempotentCreate(
            url=f"{stack.url}/v1/interactions",
            caller=bearer(stack.issuer, "alice", directions=[direction]),
            other_caller=bearer(stack.issuer, "bob", directions=[direction]),
            new_body=new_body,
            count=count,
        )
    )
