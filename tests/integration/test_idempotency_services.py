"""Idempotency-Key on a service with no tests folder of its own yet: the pipeline's creates."""

import uuid
from collections.abc import Callable

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_testkit.idempotency import IdempotentCreate, check_idempotent_create, scalar
from clientele_testkit.infra import Infrastructure
from clientele_testkit.processes import ServiceProcess

pytestmark = pytest.mark.integration


def _sales(issuer: TokenIssuer, subject: str, direction: str) -> dict[str, str]:
    token = issuer.mint(subject, roles=["sales"], directions=[direction])
    return {"Authorization": f"Bearer {token}"}


def test_a_retried_pipeline_create_makes_one(
    start_service: Callable[..., ServiceProcess], issuer: TokenIssuer, infra: Infrastructure
) -> None:
    pipeline = start_service("pipeline")
    direction = f"d{uuid.uuid4().hex[:12]}"
    database = infra.test_database_url("pipeline")

    def new_body() -> dict[str, object]:
        name = f"Sales {uuid.uuid4().hex[:10]}"
        stages = [{"name": "lead", "kind": "open"}, {"name": "won", "kind": "won"}]
        return {"name": name, "stages": stages, "directions": [direction]}

    def count(body: dict[str, object]) -> int:
        sql = "SELECT count(*) FROM pipelines WHERE name = :name"
        return int(scalar(database, sql, name=body["name"]))

    check_idempotent_create(
        IdempotentCreate(
            url=f"{pipeline.url}/v1/pipelines",
            caller=_sales(issuer, "alice", direction),
            other_caller=_sales(issuer, "bob", direction),
            new_body=new_body,
            count=count,
        )
    )
