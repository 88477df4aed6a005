"""Idempotency-Key on the directory's creates: a retried POST /v1/organizations makes one."""

import uuid

import pytest
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.testing.idempotency import IdempotentCreate, check_idempotent_create, scalar
from clientele_shared.testing.infra import Infrastructure
from clientele_shared.testing.processes import ServiceProcess
from directory_testkit import fresh_direction, sales

pytestmark = pytest.mark.integration


def test_a_retried_organization_create_makes_one(
    directory: ServiceProcess, issuer: TokenIssuer, infra: Infrastructure
) -> None:
    direction = fresh_direction()
    database = infra.test_database_url("directory")

    def new_body() -> dict[str, object]:
        return {"legal_name": f"ООО «Повтор {uuid.uuid4().hex[:10]}»", "directions": [direction]}

    def count(body: dict[str, object]) -> int:
        sql = "SELECT count(*) FROM organizations WHERE legal_name = :name"
        return int(scalar(database, sql, name=body["legal_name"]))

    check_idempotent_create(
        IdempotentCreate(
            url=f"{directory.url}/v1/organizations",
            caller=sales(issuer, direction, subject="alice"),
            other_caller=sales(issuer, direction, subject="bob"),
            new_body=new_body,
            count=count,
        )
    )
